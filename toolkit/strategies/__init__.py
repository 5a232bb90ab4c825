"""Runtime strategies: single model, pair cascade, converter path, memoization.

Every strategy is an :class:`engines.base.Engine` (input ``"input"``, output ``"probs"``) with
``classify(images) -> ClassifyResult`` and ``stats()``; they compose, e.g.
``Memo(Cascade(Single(a), Single(b), threshold=0.9), MemoConfig("exact"))``.
"""
from toolkit.strategies.base import ClassifyResult, Strategy  # noqa: F401
from toolkit.strategies.cascade import Cascade  # noqa: F401
from toolkit.strategies.convert import Convert  # noqa: F401
from toolkit.strategies.memo import Memo, MemoConfig  # noqa: F401
from toolkit.strategies.single import Single  # noqa: F401
