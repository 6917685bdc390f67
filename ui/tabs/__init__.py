"""The page's tabs, in order: the first one is open when the page loads."""
from .compare import CompareTab
from .explore import ExploreTab
from .interpolate import InterpolateTab
from .map import MapTab
from .reconstruct import ReconstructTab
from .sample import SampleTab

TABS = [SampleTab, ExploreTab, MapTab, ReconstructTab, InterpolateTab, CompareTab]
