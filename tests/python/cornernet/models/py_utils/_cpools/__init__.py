"""Stand-in for CornerNet's `_cpools` package, written for this project's cross-check (not
CornerNet's file). CornerNet's own package wraps a C++ extension (_cpools/src/*_pool.cpp) that
needs building; its forward passes are cumulative maxima, restated here with torch.cummax:
TopPool's output at row h is the maximum of the input's rows h..H-1 (top_pool.cpp: output[h] =
max(input[h], output[h+1])), BottomPool's of rows 0..h, LeftPool's of columns w..W-1 and
RightPool's of columns 0..w. The cross-check compares the backbone's features, which these pools
do not feed; they only let CornerNet's kp run as written."""
import torch
from torch import nn


def _cummax(x, dim, reverse):
    if reverse:
        return torch.flip(torch.cummax(torch.flip(x, [dim]), dim)[0], [dim])
    return torch.cummax(x, dim)[0]


class TopPool(nn.Module):
    def forward(self, x):
        return _cummax(x, 2, True)


class BottomPool(nn.Module):
    def forward(self, x):
        return _cummax(x, 2, False)


class LeftPool(nn.Module):
    def forward(self, x):
        return _cummax(x, 3, True)


class RightPool(nn.Module):
    def forward(self, x):
        return _cummax(x, 3, False)
