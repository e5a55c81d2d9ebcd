"""A tiny DivideMix run through `dmkeras.experiment.run` under a given strategy, for
tests/test_distribute.py (run as a script, one process per worker):

    python tests/distributed_run.py STRATEGY WORKDIR RESULT.json [CPU_REPLICAS]

(`multi_worker` reads TF_CONFIG.) Writes to RESULT.json what the comparison needs: the epoch
logs, every division (clean probabilities and labeled masks of both nets) and the final weights.

The backbone has no BatchNorm and the MixMatch weight is fixed to 1: BatchNorm batch statistics and
mixing partners are per replica by design (as in any data-parallel run), so only without them
must every strategy compute the same thing up to float32 summation order. With lambda = 1 the
partner's weight is exactly 0, so which partner a replica draws does not matter.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CONFIG = dict(
    dataset="digits",
    train_limit=301,  # warm-up batches of 64: the last one has 45 rows
    test_limit=101,  # eval batches of 50: the last one has 1 row, fewer than the replicas
    eval_batch_size=50,
    batch_size=32,
    epochs=3,
    warm_up=1,  # epoch 1 warm-up, epochs 2-3 co-divided: two divisions per net
    backbone="small_cnn",
    backbone_args="width=8,batchnorm=False",
    noise_mode="sym",
    noise_rate=0.4,
    lr=0.1,
    seed=3,
    verbose=0,
)


def main(strategy: str, workdir: str, result_path: str, cpu_replicas: int = 0) -> None:
    from dmkeras import experiment, metrics, ops, trainer
    from dmkeras.codivide import CoDivide
    from dmkeras.config import TrainConfig
    from dmkeras.model import SEMI_SUPERVISED

    ops.sample_mix_lambda = lambda rng, alpha: 1.0  # see the module docstring
    captured = {"divisions": [], "model": None, "history": []}
    on_epoch_begin, train = CoDivide.on_epoch_begin, trainer.train

    def recording_epoch_begin(self, epoch, logs=None):
        on_epoch_begin(self, epoch, logs)
        captured["model"] = self.model
        if self.epoch_logs["phase"] == SEMI_SUPERVISED:
            captured["divisions"].append(
                [{"clean_prob": d.clean_prob.tolist(), "labeled": d.labeled.astype(int).tolist()} for d in self.divisions]
            )

    def recording_train(*args, **kwargs):  # every worker's epoch logs (only the chief writes them)
        captured["history"] = train(*args, **kwargs)
        return captured["history"]

    CoDivide.on_epoch_begin, trainer.train = recording_epoch_begin, recording_train
    config = TrainConfig(**CONFIG, strategy=strategy, cpu_replicas=cpu_replicas, workdir=workdir)
    summary = experiment.run(config)
    model = captured["model"]
    result = {
        "replicas": model.distribute_strategy.num_replicas_in_sync,
        "test_acc_best": summary["test_acc_best"],
        "history": [
            {k: v for k, v in logs.items() if isinstance(v, (int, float)) and k not in metrics.MEASURED} for logs in captured["history"]
        ],
        "divisions": captured["divisions"],
        "weights": [w.numpy().tolist() for net in model.nets for w in net.weights],
    }
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 0)
