"""The reference's warm-up step (PreAct ResNet-18, CE + SGD) timed in its own process, for
`tools.bench --compare_torch`.

PyTorch never shares a process with TensorFlow here (the CUDA wheel's triton crashed beside it,
and two libraries' worker threads slow each other), so the benchmark starts this script with an
interpreter that has PyTorch and alternates blocks of steps with its own over a pipe:

    python tools/reference/torch_bench_worker.py --rows 128 --input_size 32 --num_classes 10 --seed 0

prints `ready <parameters>`, then answers each line `run <steps> <untimed>` with the seconds per
timed step, and stops at `quit` (or end of input).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torch_dividemix  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    for name in ("rows", "input_size", "num_classes", "seed"):
        parser.add_argument(f"--{name}", type=int, required=True)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    net = torch_dividemix.ResNet18(num_classes=args.num_classes).train()
    optimizer = torch_dividemix.sgd(net, lr=0.02)
    images = torch.randn(args.rows, 3, args.input_size, args.input_size)
    labels = torch.randint(0, args.num_classes, (args.rows,))

    def step():  # Train_CIFAR.warmup's iteration on a fixed batch
        optimizer.zero_grad()
        F.cross_entropy(net(images), labels).backward()
        optimizer.step()

    print(f"ready {sum(p.numel() for p in net.parameters())}", flush=True)
    for line in sys.stdin:
        command, *values = line.split()
        if command == "quit":
            break
        steps, untimed = (int(v) for v in values)
        for _ in range(untimed):
            step()
        started = time.perf_counter()
        for _ in range(steps):
            step()
        print(f"{(time.perf_counter() - started) / max(steps, 1):.9f}", flush=True)


if __name__ == "__main__":
    main()
