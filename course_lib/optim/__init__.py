"""Every first-order optimizer of modern deep learning, written from scratch.

Each class subclasses :class:`torch.optim.Optimizer` and keeps torch.optim's
argument names, defaults, state keys and error messages, so that a state dict
moves both ways. The readable per-tensor rule (``update``) is the reference; a
multi-tensor path (``update_foreach``) sits beside it where speed needs it.

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
=========  ==========================================  ======================
"""

from ._base import Optimizer
from .adabound import AdaBound
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW, AMSGrad
from .adamax import Adamax
from .nadam import NAdam
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "Adadelta", "RMSprop", "Adam", "AdamW", "AMSGrad",
           "Adamax", "NAdam", "Adafactor", "AdaBound"]
