import os
from typing import Any, Literal, Optional, Union, overload

import numpy as np
import numpy.typing as npt

Mask = Union[str, os.PathLike, bytes, npt.NDArray[np.uint8]]

class MaskprepError(ValueError): ...
class MaskprepIOError(MaskprepError, OSError): ...

class LabelMap:
    @staticmethod
    def from_file(path: Union[str, os.PathLike]) -> LabelMap: ...
    @staticmethod
    def from_toml(text: str) -> LabelMap: ...
    @property
    def kind(self) -> str: ...
    @property
    def classes(self) -> list[str]: ...
    @property
    def ignore(self) -> list[Union[int, str]]: ...
    @property
    def confidence(self) -> Optional[str]: ...
    @property
    def evidence(self) -> Optional[list[str]]: ...
    @property
    def detection(self) -> Optional[dict[str, Any]]: ...
    def to_toml(self) -> str: ...
    @overload
    def decode(self, mask: Mask, ignored: Literal[False] = ...) -> npt.NDArray[np.uint8]: ...
    @overload
    def decode(
        self, mask: Mask, ignored: Literal[True]
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]: ...
    def decode_index(self, mask: Mask, ignore_index: int = 255) -> npt.NDArray[np.int64]: ...

def main(argv: list[str]) -> int: ...
def labels(path: Union[str, os.PathLike], labels: Optional[str] = None) -> LabelMap: ...
def stats(
    path: Union[str, os.PathLike],
    labels: Optional[str] = None,
    rare_below: float = ...,
    strict: bool = False,
    crowd: Literal["count", "ignore"] = "count",
) -> dict[str, Any]: ...
def check(
    path: Optional[Union[str, os.PathLike]] = None,
    splits: Optional[dict[str, Union[str, os.PathLike]]] = None,
    labels: Optional[str] = None,
    connectivity: Literal[4, 8] = 8,
    min_object: int = 16,
    photos: bool = True,
    sampling_weights: bool = False,
    crowd: Literal["count", "ignore"] = "count",
) -> dict[str, Any]: ...
def weights(
    source: Union[str, os.PathLike, dict[str, Any]],
    scheme: str = "balanced",
    labels: Optional[str] = None,
    enet_c: Optional[float] = None,
    beta: Optional[float] = None,
    max_weight: Optional[float] = None,
) -> dict[str, Any]: ...
def score(
    truth: Union[str, os.PathLike],
    pred: Union[str, os.PathLike],
    labels: Optional[str] = None,
    pred_kind: Optional[str] = None,
    threshold: Optional[float] = None,
    argmax: bool = False,
    empty_as: Literal["skip", "one", "zero"] = "skip",
    backend: Literal["cpu", "gpu", "auto"] = "auto",
    tensor: Optional[str] = None,
    sweep: bool = False,
    thresholds: Optional[list[float]] = None,
    sweep_bins: Optional[int] = None,
    crowd: Literal["count", "ignore"] = "count",
) -> dict[str, Any]: ...
