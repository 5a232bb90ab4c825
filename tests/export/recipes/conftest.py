"""A small slice of the 8x8 digits as recipe data, so recipe tests train in a second or two."""
import pytest


@pytest.fixture(scope="session")
def small_recipe_data(digits_splits):
    """RecipeData of 300 train / 100 val / 100 test digits (8x8, identity preprocessing)."""
    pytest.importorskip("torch")
    from engines.preprocess import Preprocessing
    from export.recipes.common import RecipeData
    train, val, test = digits_splits
    return RecipeData("digits", train.subset(slice(0, 300)), val.subset(slice(0, 100)),
                      test.subset(slice(0, 100)), Preprocessing())


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared, busy machine two threads spin and slow each other."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
