"""Neural-network building blocks: ``Module``, ``Parameter``, layers and initialisers."""

from . import init
from .layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    GroupNorm,
    Identity,
    LeakyReLU,
    Linear,
    MaxPool2d,
    MaxUnpool2d,
    ReLU,
    Sigmoid,
    Tanh,
    Upsample,
)
from .module import Module, ModuleList, Parameter, Sequential
from .roi import RoIAlign, RoIPool, RoIWarp

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "init",
    "Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d", "GroupNorm", "ReLU", "LeakyReLU",
    "Sigmoid", "Tanh", "Identity", "Dropout", "MaxPool2d", "AvgPool2d", "MaxUnpool2d", "Upsample", "RoIAlign", "RoIPool", "RoIWarp",
]  # fmt: skip
