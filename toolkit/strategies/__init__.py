"""Runtime strategies: single model, pair cascade, converter path, memoization.

Every strategy is an :class:`engines.base.Engine` (input ``"input"``, output ``"probs"``) with
``classify(images) -> ClassifyResult`` and ``stats()``; they compose, e.g.
``Memo(Cascade(Single(a), Single(b), threshold=0.9), MemoConfig("exact"))``.

Each strategy's module declares its spec keys, building, description and energy formula with
``@register_strategy`` (:mod:`toolkit.strategies.registry`); importing this package registers the
built-in ones, in this order (the order spec errors list them in).
"""
from toolkit.strategies.base import ClassifyResult, Strategy  # noqa: F401
from toolkit.strategies.single import Single  # noqa: F401  (registers "single")
from toolkit.strategies.cascade import Cascade  # noqa: F401  (registers "cascade")
from toolkit.strategies.convert import Convert  # noqa: F401  (registers "convert")
from toolkit.strategies.memo import Memo, MemoConfig  # noqa: F401  (registers the "memo" section)
