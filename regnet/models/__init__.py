"""RegNet (Chen et al., IEEE TIP 2020): generator, discriminator and their parts."""

from regnet.models.discriminator import Discriminator
from regnet.models.regnet import RegNet, count_parameters

__all__ = ["RegNet", "Discriminator", "count_parameters"]
