from .kp import kp, AELoss
from .kp_utils import _neg_loss

from .utils import convolution, fully_connected, residual

from ._cpools import TopPool, BottomPool, LeftPool, RightPool
