"""The kinds of data source (the one list of them), and a dataset's config:
its source and its split."""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field, model_validator

from pipeline.core.schema import Schema
from pipeline.data.generators import GENERATED
from pipeline.data.images import DigitsSource, IdxDownloadSource, Mnist5kSource
from pipeline.data.matfile import MatDownloadSource
from pipeline.data.splits import SplitConfig
from pipeline.data.user_files import CsvSource, NpzSource

SOURCES = (*GENERATED, MatDownloadSource, DigitsSource, Mnist5kSource, IdxDownloadSource, CsvSource, NpzSource)
Source = Annotated[Union[SOURCES], Field(discriminator="kind")]


class DatasetConfig(Schema):
    source: Source
    split: SplitConfig

    @model_validator(mode="after")
    def _test_share_only_without_own_test_set(self):
        if self.source.ships_test_set and self.split.test != 0:
            raise ValueError("split.test must be 0: this dataset ships its own test set")
        if not self.source.ships_test_set and self.split.test == 0:
            raise ValueError("split.test must be above 0: this dataset has no test set of its own")
        return self
