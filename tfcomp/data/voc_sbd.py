"""TFDS builder for PASCAL VOC 2012 segmentation with the SBD augmented training set.

TFDS's `voc` has no segmentation masks, so this builder reads the official archives from the
manual directory:

    VOCtrainval_11-May-2012.tar   VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets}
    benchmark.tgz                 benchmark_RELEASE/dataset/{img,cls,train.txt,val.txt} (SBD)

Splits (paper Section 5.2): validation = VOC 2012 segmentation val (1,449 images); train =
(SBD train + SBD val + VOC train) minus every VOC val image (10,582 images), so no validation
image is trained on. A VOC mask is used where VOC has one (palette PNG: the indices are read,
not the colours; 255 marks object borders and is the ignore label), else SBD's `.mat`
(`GTcls.Segmentation`, classes 0..20).

    import tfcomp.data.voc_sbd  # registers the builder
    tfds.builder("voc2012_sbd", data_dir=...).download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=MANUAL))
"""

import io
import os
import tarfile

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

VOC_TAR = "VOCtrainval_11-May-2012.tar"
SBD_TAR = "benchmark.tgz"
VOC_ROOT = "VOCdevkit/VOC2012"
SBD_ROOT = "benchmark_RELEASE/dataset"
CLASSES = (
    "background aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse "
    "motorbike person pottedplant sheep sofa train tvmonitor"
).split()


def _members(tar):
    return {m.name.lstrip("./"): m for m in tar.getmembers() if m.isfile()}


def _read_ids(tar, members, name):
    return tar.extractfile(members[name]).read().decode().split()


def sbd_mask(data):
    from scipy.io import loadmat

    mat = loadmat(io.BytesIO(data))
    return np.asarray(mat["GTcls"]["Segmentation"][0][0], np.uint8)


def voc_mask(data):
    """Palette indices of a VOC PNG (not its RGB colours)."""
    with Image.open(io.BytesIO(data)) as image:
        if image.mode != "P":
            raise ValueError(f"VOC masks are palette PNGs, got mode {image.mode}")
        return np.array(image, np.uint8)


class Voc2012Sbd(tfds.core.GeneratorBasedBuilder):
    """PASCAL VOC 2012 segmentation + SBD (10,582 train / 1,449 val)."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Place {VOC_TAR} and SBD's {SBD_TAR} in the manual directory."

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "segmentation": tfds.features.Image(
                        shape=(None, None, 1), encoding_format="png"
                    ),
                    "image_id": tfds.features.Text(),
                }
            ),
            homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        )

    def _split_generators(self, dl_manager):
        voc_path = os.path.join(dl_manager.manual_dir, VOC_TAR)
        sbd_path = os.path.join(dl_manager.manual_dir, SBD_TAR)
        for path in (voc_path, sbd_path):
            if not os.path.exists(path):
                raise FileNotFoundError(f"{path} is missing. {self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
        with tarfile.open(voc_path) as voc, tarfile.open(sbd_path) as sbd:
            vm, sm = _members(voc), _members(sbd)
            seg = f"{VOC_ROOT}/ImageSets/Segmentation"
            voc_train = _read_ids(voc, vm, f"{seg}/train.txt")
            voc_val = _read_ids(voc, vm, f"{seg}/val.txt")
            sbd_ids = _read_ids(sbd, sm, f"{SBD_ROOT}/train.txt")
            sbd_ids += _read_ids(sbd, sm, f"{SBD_ROOT}/val.txt")
        val = set(voc_val)
        train = sorted((set(sbd_ids) | set(voc_train)) - val)
        return {
            "train": self._generate_examples(voc_path, sbd_path, train),
            "validation": self._generate_examples(voc_path, sbd_path, sorted(val)),
        }

    def _generate_examples(self, voc_path, sbd_path, ids):
        with tarfile.open(voc_path) as voc, tarfile.open(sbd_path) as sbd:
            vm, sm = _members(voc), _members(sbd)
            for image_id in ids:
                voc_png = f"{VOC_ROOT}/SegmentationClass/{image_id}.png"
                if voc_png in vm:
                    mask = voc_mask(voc.extractfile(vm[voc_png]).read())
                else:
                    mask = sbd_mask(sbd.extractfile(sm[f"{SBD_ROOT}/cls/{image_id}.mat"]).read())
                jpg = f"{VOC_ROOT}/JPEGImages/{image_id}.jpg"
                if jpg in vm:
                    image = voc.extractfile(vm[jpg]).read()
                else:
                    image = sbd.extractfile(sm[f"{SBD_ROOT}/img/{image_id}.jpg"]).read()
                with Image.open(io.BytesIO(image)) as decoded:
                    rgb = np.asarray(decoded.convert("RGB"))
                if rgb.shape[:2] != mask.shape:
                    raise ValueError(f"{image_id}: image {rgb.shape[:2]} but mask {mask.shape}")
                yield (
                    image_id,
                    {"image": rgb, "segmentation": mask[..., None], "image_id": image_id},
                )
