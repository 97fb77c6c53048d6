import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sinkflow import observables as O
from sinkflow import sphere
from sinkflow.grid import parse_grid


def test_grid_forms():
    assert parse_grid("2,8,32", int, "d") == (2, 8, 32)
    assert parse_grid("lin:0:9:4", float, "beta") == (0.0, 3.0, 6.0, 9.0)
    np.testing.assert_allclose(parse_grid("log:1e-2:1:3"), (0.01, 0.1, 1.0))
    assert parse_grid("3") == (3.0,)
    assert parse_grid("sa,usa", str) == ("sa", "usa")
    assert parse_grid("1,1,2") == (1.0, 2.0)


@pytest.mark.parametrize(
    "text,kind,match",
    [("", float, "empty"), ("lin:0:1", float, "could not parse"), ("lin:0:1:0", float, "NUM"), ("log:-1:1:3", float, "log grids"), ("a,b", float, "not a number"), ("1,,2", float, "empty entry"), ("nan", float, "finite"), ("1.5", int, "integers"), ("lin:0:inf:3", float, "finite")],
)
def test_grid_errors(text, kind, match):
    with pytest.raises(ValueError, match=match):
        parse_grid(text, kind, "beta")


def test_close_pairs_and_clusters():
    e = jnp.eye(3)
    x = jnp.stack([e[0], e[0], e[1], e[1], e[1], e[2]])
    np.testing.assert_allclose(O.close_pair_fraction(x, 1e-3), (2 + 6) / 30)
    assert float(O.cluster_count(x, 1e-3)) == 3.0
    # a chain 0-1-2 linked only through neighbours is one cluster (single linkage)
    ang = jnp.asarray([0.0, 0.04, 0.08, 2.0])
    chain = jnp.stack([jnp.cos(ang), jnp.sin(ang)], -1)
    assert float(O.cluster_count(chain, 1 - np.cos(0.05))) == 2.0


def test_histogram_is_a_density():
    x = sphere.uniform(jax.random.key(0), (4, 20), 3, jnp.float64)
    h = O.cosine_histogram(x, 25)
    np.testing.assert_allclose(jnp.sum(h, -1) * (2 / 25), 1.0, atol=1e-13)


def test_energy_beta0_limit_and_extremes():
    x = sphere.uniform(jax.random.key(1), (9,), 4, jnp.float64)
    e0 = O.interaction_energy(x, 0.0)
    np.testing.assert_allclose(e0, 0.5 * jnp.sum(jnp.mean(x, 0) ** 2), rtol=1e-13)
    np.testing.assert_allclose(O.interaction_energy(x, 1e-7), e0, rtol=1e-5)
    # Diracs maximise E_β (Prop 3.4): all tokens equal beats any spread
    dirac = jnp.tile(x[:1], (9, 1))
    assert O.interaction_energy(dirac, 2.0) > O.interaction_energy(x, 2.0)
