"""Jetson TensorRT deployment toolkit. Device side (engines, calibration, toolkit) runs on Python 3.6+;
host-side recipes (export, training, pruning) need the ``host`` extra (PyTorch, Python >= 3.9)."""
from setuptools import find_packages, setup

setup(
    name="jetson-trt-toolkit",
    version="0.1.0",
    description="TensorRT deployment toolkit for NVIDIA Jetson with energy-saving runtime strategies",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.6",
    packages=find_packages(include=["basics*", "toolkit*", "engines*", "calibration*", "energy_model*",
                                    "export*"]),
    install_requires=[
        "numpy>=1.19",
        "click>=8.0",
        "tqdm>=4.60",
        "packaging>=20",
        "pyyaml>=5.3",
        "xxhash>=2.0",
        "pillow>=8.0",
    ],
    package_data={"calibration": ["data/digits.npz"]},
    extras_require={
        "ort": ["onnxruntime>=1.10"],
        "host": ["torch>=1.10,<3", "onnx>=1.10", "onnxruntime>=1.10", "onnxscript>=0.1; python_version>='3.9'",
                 "scipy>=1.5", "scikit-learn>=0.24"],
        # the Jetson's runtime (docs/jetson.md; TensorRT and pycuda come from JetPack / apt)
        # onnx: to append the confidence head to a model's graph (engines/confidence_head.py)
        "jetson": ["onnxruntime>=1.10", "onnx>=1.10", "numpy<2",
                   "numpy<1.24; python_version>='3.8' and python_version<'3.10'"],
        "plot": ["matplotlib>=3.3"],
        "jtop": ["jetson-stats"],
        "nvml": ["nvidia-ml-py"],
        "triton": ["tritonclient[http,grpc]>=2.40"],
        # jetson-stats: its own reader checks the fake sysfs trees (tests/toolkit/power)
        "dev": ["pytest>=7", "pytest-timeout", "vermin>=1.5",
                "jetson-stats==7.2.2; python_version>='3.7'"],
    },
    entry_points={"console_scripts": ["toolkit=toolkit.cli.main:main"]},
)
