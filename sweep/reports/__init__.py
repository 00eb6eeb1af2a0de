"""Reports of a sweep: summary tables with confidence intervals (`summary_table.py`) and
PNG figures (`plots.py`)."""

from .summary_table import SUMMARY_INPUT as SUMMARY_INPUT
from .summary_table import format_comparison as format_comparison
from .summary_table import format_linear_summary as format_linear_summary
from .summary_table import format_summary as format_summary
from .summary_table import interval_of as interval_of
from .summary_table import linear_summary as linear_summary
from .summary_table import summary as summary
from .summary_table import wilson_interval as wilson_interval
from .summary_table import write_report as write_report
