"""TrainConfig: validation messages name the flag and the value; the strategy lists agree."""

import pytest

from dmkeras import config, division
from dmkeras.errors import ConfigError


def test_division_names_agree_with_the_division_module():
    assert config.DIVISIONS == division.DIVISIONS


def test_mixed_precision_modes_agree_with_the_precision_module():
    from dmkeras import precision

    assert config.MIXED_PRECISION == precision.MODES
    for mode in config.MIXED_PRECISION:
        config.TrainConfig(workdir="runs/x", mixed_precision=mode, jit_compile=True).validate()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"noise_rate": -0.1}, "--noise_rate must be in [0, 1], got -0.1"),
        ({"warm_up": 20, "epochs": 10}, "--warm_up must be in [0, epochs=10], got 20"),
        ({"division": "kmeans"}, "--division must be one of gmm, per_class_gmm, class_floor, unicon, got 'kmeans'"),
        ({"class_floor": 2.0}, "--class_floor must be in [0, 1], got 2.0"),
        ({"batch_size": 0}, "--batch_size must be >= 1, got 0"),
        ({"backbone_args": "alpha"}, "--backbone_args: expected key=value, got 'alpha'"),
        ({"workdir": ""}, "--workdir is required"),
        ({"augment": "crop,rotate"}, "--augment='crop,rotate': unknown augmentation 'rotate': use a comma list of crop, resized_crop, flip, or none"),
        ({"augment": "crop,resized_crop"}, "--augment='crop,resized_crop': crop and resized_crop are exclusive: use one of them"),
        ({"contrastive_weight": -0.5}, "--contrastive_weight must be >= 0, got -0.5"),
        ({"contrastive_temperature": 0.0}, "--contrastive_temperature must be > 0, got 0.0"),
        ({"mixed_precision": "float16"}, "--mixed_precision must be one of off, mixed_float16, mixed_bfloat16, got 'float16'"),
    ],
)
def test_validate_names_the_bad_setting(overrides, message):
    """The library's error names the config field; launch/ shows the same line with the flag."""
    values = {"workdir": "runs/x", **overrides}
    with pytest.raises(ConfigError) as error:
        config.TrainConfig(**values).validate()
    assert str(error.value) == message.replace("--", "")
    assert error.value.as_flags() == message


def test_a_message_naming_two_fields_maps_both_to_flags_and_nothing_else():
    with pytest.raises(ConfigError) as error:
        config.TrainConfig(workdir="runs/x", strategy="default", cpu_replicas=2).validate()
    assert str(error.value) == "cpu_replicas applies to strategy=mirrored only, got strategy=default"
    assert error.value.as_flags() == "--cpu_replicas applies to --strategy=mirrored only, got --strategy=default"
    with pytest.raises(ConfigError) as error:
        config.TrainConfig(workdir="runs/x", resize_shorter=300).validate()
    assert error.value.as_flags() == "--resize_shorter needs --stream (in-memory images are resized to --image_size once)"
    assert ConfigError("pad must be >= 0, got -1; padding", ("pad",)).as_flags() == "--pad must be >= 0, got -1; padding"


def test_backbone_args_and_confidence_penalty():
    assert config.parse_backbone_args("alpha=0.35, width=64,flag=true,name=x") == {"alpha": 0.35, "width": 64, "flag": True, "name": "x"}
    assert config.TrainConfig(noise_mode="asym").use_confidence_penalty
    assert not config.TrainConfig(noise_mode="sym").use_confidence_penalty
    assert config.TrainConfig(noise_mode="sym", confidence_penalty="on").use_confidence_penalty


def test_sections_hold_every_field_once_and_flat_round_trips():
    """Each field lives in one typed section; flat() is config.json's form and builds the same config."""
    names = [field.name for section in config.SECTIONS.values() for field in __import__("dataclasses").fields(section)]
    assert len(names) == len(set(names)) == len(config.SECTION_OF)
    built = config.TrainConfig(workdir="runs/x", lambda_u=0.0, ssl_rows="labeled", lr=0.1, dataset="fashion_mnist")
    assert (built.dividemix.lambda_u, built.optim.lr, built.data.dataset, built.runtime.workdir) == (0.0, 0.1, "fashion_mnist", "runs/x")
    assert config.TrainConfig.from_flat(built.flat()) == built
    assert set(built.flat()) == set(config.SECTION_OF)


def test_built_from_sections_with_flat_fields_on_top():
    divide = config.DivideMixConfig(lambda_u=5.0, p_threshold=0.6)
    built = config.TrainConfig(dividemix=divide, workdir="runs/x", p_threshold=0.7)
    assert (built.dividemix.lambda_u, built.dividemix.p_threshold) == (5.0, 0.7)
    assert divide.p_threshold == 0.6  # the given section is copied, not changed
    with pytest.raises(TypeError, match="dividemix must be a DivideMixConfig, got OptimConfig"):
        config.TrainConfig(dividemix=config.OptimConfig())


def test_replace_copies_and_unknown_fields_are_named():
    base = config.TrainConfig(workdir="runs/x")
    changed = base.replace(epochs=3, lambda_u=1.0)
    assert (changed.optim.epochs, changed.dividemix.lambda_u, base.optim.epochs, base.dividemix.lambda_u) == (3, 1.0, 300, 25.0)
    with pytest.raises(ConfigError) as error:
        config.TrainConfig(workdir="runs/x", lamda_u=1.0)
    assert error.value.as_flags() == "--lamda_u is not a TrainConfig field"
    assert config.TrainConfig.from_flat({"workdir": "runs/x", "retired_flag": 1}, ignore_unknown=True).runtime.workdir == "runs/x"


def test_each_section_checks_its_own_fields():
    with pytest.raises(ConfigError, match="^lambda_u must be >= 0, got -1"):
        config.DivideMixConfig(lambda_u=-1.0).validate()
    with pytest.raises(ConfigError, match=r"^warm_up must be in \[0, epochs=5\], got 6"):
        config.OptimConfig(epochs=5, warm_up=6).validate()
    config.DataConfig().validate()
    with pytest.raises(ConfigError, match="^workdir is required"):
        config.RuntimeConfig().validate()  # the run directory is the one setting without a default
    with pytest.raises(ConfigError, match=r"^freeze_epochs must be in \[0, epochs=5\], got 6"):  # spans model and optim
        config.TrainConfig(workdir="runs/x", epochs=5, warm_up=1, freeze_epochs=6).validate()
