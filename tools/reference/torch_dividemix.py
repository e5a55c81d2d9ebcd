"""The reference's computations in PyTorch, transcribed from LiJunnan1992/DivideMix.

Written from the reference's files (as read: PreResNet.py and Train_CIFAR.py at commit 39740b2,
Train_clothing1M.py at 5079ec7, identical to Train_Clothing1M.py at 39740b2), not copied: the arithmetic and the
order of operations follow them line by line, the data loading, CUDA and logging are left out,
and the two random draws of a semi-supervised step (the mix lambda and the permutation) are
arguments instead of `np.random.beta` / `torch.randperm`.

* `PreActBlock`, `PreActResNet`, `ResNet18` <- ``PreResNet.py`` (``PreActBlock``, ``ResNet``,
  ``ResNet18``), with `in_channels` as a parameter (the reference hard-codes 3).
* `SmallCNN`: not in the reference; the PyTorch twin of ``dmkeras/backbones/small_cnn.py``, so
  that the training maths is checked on a net small enough to compare in full.
* `warmup_step` <- ``Train_CIFAR.warmup`` (one iteration; CE, + ``NegEntropy`` under asym noise,
  as ``Train_clothing1M.warmup`` always does).
* `eval_train` <- ``Train_CIFAR.eval_train`` (``Train_clothing1M.eval_train`` is the same without
  the history).
* `ssl_step_cifar` <- ``Train_CIFAR.train`` (one iteration; ``SemiLoss`` inline, `lamb` given).
* `ssl_step_clothing` <- ``Train_clothing1M.train`` (one iteration).
* `sgd`, `set_lr` <- the scripts' ``optim.SGD(..., momentum=0.9, weight_decay=5e-4)`` and their
  per-epoch ``param_group['lr'] = lr``.
* `test_ensemble` <- ``Train_CIFAR.test``.

PyTorch only: never import this module in a process that has TensorFlow.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.mixture import GaussianMixture
from torch import nn

# -- networks (PreResNet.py) -------------------------------------------------------------------------


def conv3x3(in_planes, out_planes, stride=1):
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class PreActBlock(nn.Module):
    """PreResNet.PreActBlock: the shortcut is applied to relu(bn1(x)); the identity shortcut is an
    empty nn.Sequential, so an identity block adds relu(bn1(x)), not x."""

    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, kernel_size=1, stride=stride, bias=False)
            )

    def forward(self, x):
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        out = out + shortcut
        return out


class PreActResNet(nn.Module):
    """PreResNet.ResNet with PreActBlock (the `lin`/`lout` slicing of forward left out)."""

    def __init__(self, block, num_blocks, num_classes=10, in_channels=3):
        super().__init__()
        self.in_planes = 64
        self.conv1 = conv3x3(in_channels, 64)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.linear = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        out = out.view(out.size(0), -1)
        return self.linear(out)


def ResNet18(num_classes=10, in_channels=3):  # noqa: N802 (the reference's name)
    return PreActResNet(PreActBlock, [2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels)


class _ConvUnit(nn.Module):
    def __init__(self, in_channels, filters, batchnorm):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, filters, kernel_size=3, padding=1, bias=not batchnorm)
        self.bn = nn.BatchNorm2d(filters, eps=1e-5, momentum=0.1) if batchnorm else None

    def forward(self, x):
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x)


class SmallCNN(nn.Module):
    """dmkeras' small_cnn: conv3x3(w)-BN-ReLU x2, MaxPool 2, conv3x3(2w)-BN-ReLU x2, GAP, linear."""

    def __init__(self, num_classes, in_channels=1, width=8, batchnorm=True):
        super().__init__()
        self.block1a = _ConvUnit(in_channels, width, batchnorm)
        self.block1b = _ConvUnit(width, width, batchnorm)
        self.block2a = _ConvUnit(width, 2 * width, batchnorm)
        self.block2b = _ConvUnit(2 * width, 2 * width, batchnorm)
        self.logits = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        x = F.max_pool2d(self.block1b(self.block1a(x)), 2)
        x = self.block2b(self.block2a(x))
        return self.logits(x.mean(dim=(2, 3)))


def build(arch, num_classes, in_channels=None, width=8, batchnorm=True):
    if arch == "preact_resnet18":
        return ResNet18(num_classes, 3 if in_channels is None else in_channels)
    if arch == "small_cnn":
        return SmallCNN(num_classes, 1 if in_channels is None else in_channels, width, batchnorm)
    raise ValueError(f"unknown arch {arch!r}")


def load_state(net, state: dict):
    """Load a torch-layout dict of numpy arrays (convert.reference_init) into `net`."""
    tensors = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in state.items()}
    missing, unexpected = net.load_state_dict(tensors, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    return net


def state_numpy(net) -> dict:
    """`net.state_dict()` as float32 numpy arrays, without num_batches_tracked."""
    return {
        k: v.detach().cpu().numpy().astype(np.float32).copy()
        for k, v in net.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def nchw(x_nhwc) -> torch.Tensor:
    """A float32 NCHW tensor from NHWC numpy images (the fixtures are stored NHWC, as Keras reads them)."""
    return torch.from_numpy(np.ascontiguousarray(np.transpose(np.asarray(x_nhwc, np.float32), (0, 3, 1, 2))))


def forward(net, x, train: bool) -> torch.Tensor:
    """Logits of `net` in train mode (batch statistics; updates the running stats) or eval mode."""
    net.train(train)
    with torch.no_grad():
        return net(x)


# -- losses (Train_CIFAR.py) -------------------------------------------------------------------------

CEloss = nn.CrossEntropyLoss()
CE = nn.CrossEntropyLoss(reduction="none")


class NegEntropy:
    """Train_CIFAR.NegEntropy: mean over rows of sum_c p log p."""

    def __call__(self, outputs):
        probs = torch.softmax(outputs, dim=1)
        return torch.mean(torch.sum(probs.log() * probs, dim=1))


conf_penalty = NegEntropy()


# -- optimizer ------------------------------------------------------------------------------------


def sgd(net, lr, momentum=0.9, weight_decay=5e-4):
    return torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def set_lr(optimizer, lr):
    for param_group in optimizer.param_groups:
        param_group["lr"] = lr


# -- steps ---------------------------------------------------------------------------------------


def warmup_step(net, optimizer, inputs, labels, penalize=False) -> dict:
    """One iteration of Train_CIFAR.warmup (``penalize``: the asym-noise confidence penalty)."""
    net.train()
    optimizer.zero_grad()
    outputs = net(inputs)
    loss = CEloss(outputs, labels)
    if penalize:
        penalty = conf_penalty(outputs)
        L = loss + penalty
    else:
        penalty = None
        L = loss
    L.backward()
    optimizer.step()
    out = {"loss": L.item(), "ce": loss.item()}
    if penalty is not None:
        out["penalty"] = penalty.item()
    return out


def eval_train(model, inputs, targets, all_loss, average_history=True, batch_size=None, random_state=None):
    """Train_CIFAR.eval_train on one in-memory "train set" (rows in index order).

    ``average_history`` is the reference's ``args.r == 0.9`` branch (mean of the last 5 entries of
    ``all_loss``); ``random_state`` is GaussianMixture's (the reference leaves it None: the
    k-means initialisation then draws from numpy's global RNG).
    """
    model.eval()
    n = inputs.shape[0]
    batch_size = batch_size or n
    losses = torch.zeros(n)
    with torch.no_grad():
        for start in range(0, n, batch_size):
            outputs = model(inputs[start:start + batch_size])
            loss = CE(outputs, targets[start:start + batch_size])
            for b in range(outputs.size(0)):
                losses[start + b] = loss[b]
    raw = losses.clone()
    losses = (losses - losses.min()) / (losses.max() - losses.min())
    all_loss.append(losses)
    if average_history:
        history = torch.stack(all_loss)
        input_loss = history[-5:].mean(0)
        input_loss = input_loss.reshape(-1, 1)
    else:
        input_loss = losses.reshape(-1, 1)
    gmm = GaussianMixture(n_components=2, max_iter=10, tol=1e-2, reg_covar=5e-4, random_state=random_state)
    gmm.fit(input_loss)
    prob = gmm.predict_proba(input_loss)
    prob = prob[:, gmm.means_.argmin()]
    low = int(gmm.means_.argmin())
    order = [low, 1 - low]
    result = {
        "losses": raw.numpy(),
        "normalized": losses.numpy(),
        "input_loss": input_loss.reshape(-1).numpy(),
        "prob": prob,
        "gmm_means": gmm.means_.reshape(-1)[order],
        "gmm_variances": gmm.covariances_.reshape(-1)[order],
        "gmm_weights": gmm.weights_[order],
        "gmm_n_iter": np.array(gmm.n_iter_),
    }
    return result, all_loss


def _co_guess_and_refine(net, net2, inputs_x, inputs_x2, labels_x, w_x, inputs_u, inputs_u2, T, num_class):
    batch_size = inputs_x.size(0)
    labels_x = torch.zeros(batch_size, num_class).scatter_(1, labels_x.view(-1, 1), 1)
    w_x = w_x.view(-1, 1).type(torch.FloatTensor)
    with torch.no_grad():
        # label co-guessing of unlabeled samples
        outputs_u11 = net(inputs_u)
        outputs_u12 = net(inputs_u2)
        outputs_u21 = net2(inputs_u)
        outputs_u22 = net2(inputs_u2)
        pu = (
            torch.softmax(outputs_u11, dim=1)
            + torch.softmax(outputs_u12, dim=1)
            + torch.softmax(outputs_u21, dim=1)
            + torch.softmax(outputs_u22, dim=1)
        ) / 4
        ptu = pu ** (1 / T)
        targets_u = (ptu / ptu.sum(dim=1, keepdim=True)).detach()
        # label refinement of labeled samples
        outputs_x = net(inputs_x)
        outputs_x2 = net(inputs_x2)
        px = (torch.softmax(outputs_x, dim=1) + torch.softmax(outputs_x2, dim=1)) / 2
        px = w_x * labels_x + (1 - w_x) * px
        ptx = px ** (1 / T)
        targets_x = (ptx / ptx.sum(dim=1, keepdim=True)).detach()
    return targets_x, targets_u


def _mixmatch(inputs, targets, lam, idx, rows=None):
    """The scripts' "mixmatch" block: concatenate, permute with `idx` (over all 4B rows), mix.
    `rows`: keep the first `rows` mixed rows (Train_clothing1M / Train_webvision: 2B)."""
    all_inputs = torch.cat(inputs, dim=0)
    all_targets = torch.cat(targets, dim=0)
    idx = torch.as_tensor(idx, dtype=torch.int64)
    input_a, input_b = all_inputs, all_inputs[idx]
    target_a, target_b = all_targets, all_targets[idx]
    if rows is None:
        return lam * input_a + (1 - lam) * input_b, lam * target_a + (1 - lam) * target_b
    return lam * input_a[:rows] + (1 - lam) * input_b[:rows], lam * target_a[:rows] + (1 - lam) * target_b[:rows]


def ssl_step_cifar(net, net2, optimizer, batch, lam, idx, lamb, T=0.5, num_class=10) -> dict:
    """One iteration of Train_CIFAR.train with the mix lambda `lam`, the permutation `idx` (of the
    4B rows) and the ramped unsupervised weight `lamb` given.

    `batch`: inputs_x, inputs_x2 (NCHW), labels_x (int64), w_x, inputs_u, inputs_u2.
    """
    net.train()
    net2.eval()  # fix one network and train the other
    inputs_x, inputs_x2, inputs_u, inputs_u2 = (batch[k] for k in ("inputs_x", "inputs_x2", "inputs_u", "inputs_u2"))
    batch_size = inputs_x.size(0)
    targets_x, targets_u = _co_guess_and_refine(
        net, net2, inputs_x, inputs_x2, batch["labels_x"], batch["w_x"], inputs_u, inputs_u2, T, num_class
    )
    mixed_input, mixed_target = _mixmatch(
        [inputs_x, inputs_x2, inputs_u, inputs_u2], [targets_x, targets_x, targets_u, targets_u], lam, idx
    )

    logits = net(mixed_input)
    logits_x = logits[: batch_size * 2]
    logits_u = logits[batch_size * 2:]
    # SemiLoss
    probs_u = torch.softmax(logits_u, dim=1)
    Lx = -torch.mean(torch.sum(F.log_softmax(logits_x, dim=1) * mixed_target[: batch_size * 2], dim=1))
    Lu = torch.mean((probs_u - mixed_target[batch_size * 2:]) ** 2)
    # regularization
    prior = torch.ones(num_class) / num_class
    pred_mean = torch.softmax(logits, dim=1).mean(0)
    penalty = torch.sum(prior * torch.log(prior / pred_mean))

    loss = Lx + lamb * Lu + penalty
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {
        "targets_x": targets_x.numpy(),
        "targets_u": targets_u.numpy(),
        "mixed_target": mixed_target.numpy(),
        "Lx": np.array(Lx.item(), np.float32),
        "Lu": np.array(Lu.item(), np.float32),
        "penalty": np.array(penalty.item(), np.float32),
        "loss": np.array(loss.item(), np.float32),
    }


def ssl_step_clothing(net, net2, optimizer, batch, lam, idx, T=0.5, num_class=14) -> dict:
    """One iteration of Train_clothing1M.train: the 4B rows are permuted (`idx`, given) but only
    the first 2B mixed rows are passed through the net; loss = Lx + penalty over those rows."""
    net.train()
    net2.eval()
    inputs_x, inputs_x2, inputs_u, inputs_u2 = (batch[k] for k in ("inputs_x", "inputs_x2", "inputs_u", "inputs_u2"))
    batch_size = inputs_x.size(0)
    targets_x, targets_u = _co_guess_and_refine(
        net, net2, inputs_x, inputs_x2, batch["labels_x"], batch["w_x"], inputs_u, inputs_u2, T, num_class
    )
    mixed_input, mixed_target = _mixmatch(
        [inputs_x, inputs_x2, inputs_u, inputs_u2], [targets_x, targets_x, targets_u, targets_u], lam, idx,
        rows=batch_size * 2,
    )

    logits = net(mixed_input)
    Lx = -torch.mean(torch.sum(F.log_softmax(logits, dim=1) * mixed_target, dim=1))
    prior = torch.ones(num_class) / num_class
    pred_mean = torch.softmax(logits, dim=1).mean(0)
    penalty = torch.sum(prior * torch.log(prior / pred_mean))

    loss = Lx + penalty
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {
        "targets_x": targets_x.numpy(),
        "targets_u": targets_u.numpy(),
        "mixed_target": mixed_target.numpy(),
        "Lx": np.array(Lx.item(), np.float32),
        "penalty": np.array(penalty.item(), np.float32),
        "loss": np.array(loss.item(), np.float32),
    }


def test_ensemble(net1, net2, inputs, targets) -> dict:
    """Train_CIFAR.test on one batch: argmax of the summed logits, accuracy in percent."""
    net1.eval()
    net2.eval()
    with torch.no_grad():
        outputs1 = net1(inputs)
        outputs2 = net2(inputs)
        outputs = outputs1 + outputs2
        _, predicted = torch.max(outputs, 1)
        correct = predicted.eq(targets).cpu().sum().item()
    acc = 100.0 * correct / targets.size(0)
    return {"logits": outputs.numpy(), "predicted": predicted.numpy(), "acc": np.array(acc)}
