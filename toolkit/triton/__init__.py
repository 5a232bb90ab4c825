"""Serving a deployment from NVIDIA Triton Inference Server.

``toolkit triton export`` writes a model repository (:mod:`toolkit.triton.export`): each engine as a
``tensorrt_plan`` or ``onnxruntime`` model and the strategy as one Python-backend model
(:mod:`toolkit.triton.python_model`) that clients call; ``toolkit triton serve`` runs a local
``tritonserver`` (:mod:`toolkit.triton.server`); ``toolkit run --triton URL`` is the client
(:mod:`toolkit.triton.client`). The toolkit does not grow a server of its own.
"""
