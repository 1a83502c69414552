import pytest

from secml.errors import SecmlError
from secml.ipinsights.hyperparameters import parse_hp_arguments, validate_hyperparameters

REQUIRED = {"num_entity_vectors": 10, "vector_dim": 8}


def test_defaults_are_sagemakers():
    hp = validate_hyperparameters(REQUIRED)
    assert hp == {
        "num_entity_vectors": 10,
        "vector_dim": 8,
        "batch_metrics_publish_interval": 1000,
        "epochs": 10,
        "learning_rate": 0.001,
        "mini_batch_size": 10000,
        "num_ip_encoder_layers": 1,
        "random_negative_sampling_rate": 1,
        "shuffled_negative_sampling_rate": 1,
        "weight_decay": 0.00001,
    }


def test_string_values_are_accepted_like_sagemakers_string_map():
    hp = validate_hyperparameters(
        {"num_entity_vectors": "20000", "vector_dim": "128", "learning_rate": "1e-2"}
    )
    assert hp["num_entity_vectors"] == 20000 and hp["learning_rate"] == 0.01


@pytest.mark.parametrize(
    "name,value",
    [
        ("num_entity_vectors", 0),
        ("num_entity_vectors", 250_000_001),
        ("vector_dim", 3),
        ("vector_dim", 4097),
        ("epochs", 0),
        ("learning_rate", 1e-7),
        ("learning_rate", 10.5),
        ("mini_batch_size", 500_001),
        ("num_ip_encoder_layers", 101),
        ("random_negative_sampling_rate", 501),
        ("shuffled_negative_sampling_rate", -1),
        ("weight_decay", 10.1),
        ("batch_metrics_publish_interval", 0),
        ("vector_dim", "12.5"),
        ("vector_dim", "abc"),
        ("epochs", True),
    ],
)
def test_out_of_range_values_are_rejected_naming_the_range(name, value):
    with pytest.raises(SecmlError, match=rf"hyperparameter {name}=.*must be"):
        validate_hyperparameters({**REQUIRED, name: value})


def test_range_edges_are_accepted():
    hp = validate_hyperparameters(
        {"num_entity_vectors": 1, "vector_dim": 4096, "num_ip_encoder_layers": 0, "weight_decay": 0}
    )
    assert hp["vector_dim"] == 4096 and hp["num_ip_encoder_layers"] == 0


def test_required_and_unknown_names():
    with pytest.raises(SecmlError, match="vector_dim is required"):
        validate_hyperparameters({"num_entity_vectors": 5})
    with pytest.raises(SecmlError, match="unknown hyperparameter.*vector_size"):
        validate_hyperparameters({**REQUIRED, "vector_size": 5})


def test_negative_rates_must_sum_to_1_to_500():
    with pytest.raises(SecmlError, match=r"must be in \[1, 500\], got 0"):
        validate_hyperparameters(
            {**REQUIRED, "random_negative_sampling_rate": 0, "shuffled_negative_sampling_rate": 0}
        )
    with pytest.raises(SecmlError, match="got 501"):
        validate_hyperparameters(
            {**REQUIRED, "random_negative_sampling_rate": 500, "shuffled_negative_sampling_rate": 1}
        )


def test_hp_arguments():
    assert parse_hp_arguments(["vector_dim=64", " epochs = 3 "]) == {
        "vector_dim": "64",
        "epochs": "3",
    }
    with pytest.raises(SecmlError, match="expected name=value"):
        parse_hp_arguments(["vector_dim"])
