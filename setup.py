"""tfcomp: image understanding from learned compression without decoding (Torfason et al., 2018)."""

from setuptools import find_packages, setup

BEAM = ["apache-beam>=2.77,<3"]
SERVE = ["fastapi>=0.115,<1", "uvicorn>=0.30,<1", "python-multipart>=0.0.9"]
LITERT = ["ai-edge-litert>=2,<3"]

setup(
    name="tfcomp",
    version="0.1.0",
    description=(
        "Learned image compression and classification/segmentation directly on the "
        "compressed representation (TensorFlow 2 / Keras 3)."
    ),
    python_requires=">=3.10",
    packages=find_packages(include=["tfcomp", "tfcomp.*", "experiments", "flags"]),
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-datasets>=4.9.10,<5",
        # TF 2.21 no longer pulls it in; tf.summary needs it.
        "tensorboard>=2.19,<3",
        # TFDS 4.9.10 imports it when building a dataset but does not declare it.
        "importlib_resources>=6",
        "absl-py>=2.1,<3",
        "numpy>=1.26,<3",
        "pillow>=10.3,<13",
        "matplotlib>=3.8,<4",
        "constriction>=0.4,<0.6",
        # Ships the real photographs used as the embedded default training data.
        "scikit-image>=0.24,<0.27",
        # Reads SBD's .mat masks (VOC 2012 + SBD builder).
        "scipy>=1.11,<2",
    ],
    extras_require={
        # Store encoding as an Apache Beam pipeline (tfcomp.data.store_beam).
        "beam": BEAM,
        # `tfcomp serve`: the HTTP service (tfcomp.serve).
        "serve": SERVE,
        # Running an exported encoder (`tfcomp export-encoder --check`, tfcomp.codec.export).
        "litert": LITERT,
        # The test suite runs every optional path too.
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "ruff>=0.6,<1", *BEAM, *SERVE, *LITERT],
    },
    entry_points={"console_scripts": ["tfcomp=tfcomp.cli:main"]},
)
