"""launch.audit's scoring model without --from_run: which training each --scoring names."""

import pytest

from dmkeras import audit_run
from dmkeras.config import TrainConfig
from dmkeras.errors import DmkerasError


@pytest.mark.parametrize(
    "scoring, epochs, warm_up",
    [
        ("dividemix", 30, 10),  # the recipe as it is: warm-up, then DivideMix; its nets score
        ("warmup", 10, 10),  # the recipe's warm-up only (CE)
        ("ce", 30, 30),  # the seed note's protocol: CE warm-up steps for every --epochs
    ],
)
def test_each_scoring_model_trains_what_its_name_says(scoring, epochs, warm_up, capsys):
    config = TrainConfig(epochs=30, warm_up=10, method="standard", workdir="runs/audit")
    scoring_config = audit_run._scoring_config(config, scoring, "runs/audit/scoring_model")
    assert (scoring_config.optim.epochs, scoring_config.optim.warm_up) == (epochs, warm_up)
    assert scoring_config.model.method == "dividemix" and scoring_config.runtime.workdir == "runs/audit/scoring_model"
    assert capsys.readouterr().out.startswith("training a scoring model (2 nets, ")


def test_the_default_scoring_model_is_dividemix_and_a_wrong_one_is_named():
    assert audit_run.AuditConfig().scoring == "dividemix"
    with pytest.raises(DmkerasError, match="^scoring must be one of dividemix, warmup, ce, got 'long'$"):
        audit_run.AuditConfig(scoring="long").validate()
