"""The reference's PyTorch PreAct ResNet-18 training step, for the benchmark's speed comparison.

Only used by `launch.bench --compare_torch` when PyTorch is installed (it is not a dependency).
The network follows the reference's CIFAR variant, as `dmkeras.backbones.preact_resnet` does:
3x3 conv 64, BN, ReLU, four stages of two pre-activation basic blocks (64/128/256/512, strides
1/2/2/2, a 1x1 conv shortcut where the shape changes), 4x4 average pooling, linear layer; the
step is cross-entropy + SGD (momentum 0.9, weight decay 5e-4), as the reference's warm-up.
"""


def torch_train_step(batch_size: int, input_size: int, num_classes: int, seed: int = 0):
    """(step, num_parameters): `step()` runs one training step of the PyTorch PreAct ResNet-18 on a
    fixed random batch of `batch_size` images of input_size x input_size x 3 (NCHW)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class PreActBlock(nn.Module):
        def __init__(self, in_planes, planes, stride):
            super().__init__()
            self.bn1 = nn.BatchNorm2d(in_planes)
            self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.shortcut = None
            if stride != 1 or in_planes != planes:
                self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

        def forward(self, x):
            out = F.relu(self.bn1(x))
            shortcut = x if self.shortcut is None else self.shortcut(out)
            out = self.conv1(out)
            out = self.conv2(F.relu(self.bn2(out)))
            return out + shortcut

    class PreActResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            blocks, in_planes = [], 64
            for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
                for s in (stride, 1):
                    blocks.append(PreActBlock(in_planes, planes, s))
                    in_planes = planes
            self.blocks = nn.Sequential(*blocks)
            self.linear = nn.Linear(512, num_classes)

        def forward(self, x):
            out = self.blocks(F.relu(self.bn1(self.conv1(x))))
            out = F.adaptive_avg_pool2d(out, 1) if out.shape[-1] != 4 else F.avg_pool2d(out, 4)
            return self.linear(torch.flatten(out, 1))

    torch.manual_seed(seed)
    net = PreActResNet18().train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
    images = torch.randn(batch_size, 3, input_size, input_size)
    labels = torch.randint(0, num_classes, (batch_size,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(images), labels)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step, sum(p.numel() for p in net.parameters())
