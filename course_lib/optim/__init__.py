"""Every first-order optimizer of modern deep learning, written from scratch.

Each class subclasses :class:`torch.optim.Optimizer` and keeps torch.optim's
argument names, defaults, state keys and error messages, so that a state dict
moves both ways. The readable per-tensor rule (``update``) is the reference; a
multi-tensor path (``update_foreach``) sits beside it where speed needs it.

The classes torch.optim also has take every keyword of torch's constructor with its
meaning: ``foreach``, ``maximize``, ``differentiable=True`` (the step is differentiable:
a hypergradient such as d loss / d lr flows through it), ``fused=True`` where torch has
it (the multi-tensor path), tensor learning rates and Adam's tensor betas, sparse
gradients for SGD and Adagrad; ``capturable=True`` (CUDA graphs) is refused with the
reason. tests/test_optim_torch_db.py holds them to PyTorch's own optimizer tests.

=========  ==========================================  ======================
class      idea                                        paper
=========  ==========================================  ======================
SGD        gradient step, heavy-ball / Nesterov        Polyak 1964, Sutskever+ 2013
Adagrad    per-coordinate 1/sqrt(sum of g^2)           Duchi, Hazan & Singer 2011
Adadelta   RMS of updates over RMS of gradients        Zeiler 2012
RMSprop    leaky average of g^2                        Tieleman & Hinton 2012
Adam       momentum / sqrt(leaky g^2), bias-corrected  Kingma & Ba 2015
AdamW      Adam with decoupled weight decay            Loshchilov & Hutter 2019
AMSGrad    Adam with a running max of v                Reddi, Kale & Kumar 2018
Adamax     Adam with the infinity norm                 Kingma & Ba 2015
NAdam      Adam with Nesterov momentum                 Dozat 2016
Adafactor  factored second moments                     Shazeer & Stern 2018
AdaBound   Adam clipped into a band that tends to SGD  Luo, Xiong, Liu & Sun 2019
Lion       sign of an interpolated momentum            Chen et al. 2023
Shampoo    L^-1/4 G R^-1/4, Kronecker Adagrad         Gupta, Koren & Singer 2018
Muon       momentum orthogonalized by Newton-Schulz    Jordan et al. 2024
Muon+Adam  Muon on matrices, AdamW on the rest         Jordan et al. 2024
SF-SGD     schedule-free SGD (averaging, no schedule)  Defazio et al. 2024
SF-AdamW   schedule-free AdamW                         Defazio et al. 2024
SWATS      Adam, then SGD at the projected step size   Keskar & Socher 2017
=========  ==========================================  ======================

(Muon+Adam: ``MuonWithAdamW``. SF-SGD, SF-AdamW: ``ScheduleFreeSGD``, ``ScheduleFreeAdamW``; call
their ``train()`` before training and ``eval()`` before evaluating.)
"""

from ._base import Optimizer
from .adabound import AdaBound
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW, AMSGrad
from .adamax import Adamax
from .lion import Lion
from .muon import Muon, MuonWithAdamW
from .nadam import NAdam
from .rmsprop import RMSprop
from .schedule_free import ScheduleFreeAdamW, ScheduleFreeSGD
from .sgd import SGD
from .shampoo import Shampoo
from .swats import SWATS

__all__ = ["Optimizer", "SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "AMSGrad",
           "Adamax", "NAdam", "Adafactor", "AdaBound",
           "Lion", "Shampoo", "Muon", "MuonWithAdamW", "ScheduleFreeSGD", "ScheduleFreeAdamW", "SWATS"]
