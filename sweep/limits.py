"""Every tolerance and size limit used to compare, group, search and prove points: one
name and one value each. The docs' Architecture page lists them (a test keeps the two
in step). User-facing tolerances of a sweep are config fields instead (`classify.*`).
"""

# --- Same point ---------------------------------------------------------------------
# Two points are one when their canonical forms (rows and columns sorted, `symmetry/
# canonical.py`) agree to this in every entry: runs that reached one point agree to
# ~1e-10, distinct points differ by far more (`symmetry.canonical.same_point`).
SAME_POINT = 1e-6
# A run's spectrum is computed once per point of this grid (decimals of its canonical
# form): a cache key, far finer than SAME_POINT (`diagnostics/spectrum.py`).
SPECTRUM_GRID_DECIMALS = 9

# Two neurons point the same way (a point on a manifold of critical points) when the
# cosine of their angle is within this of 1.
PARALLEL_ROWS = 1e-10

# --- Isotropy --------------------------------------------------------------------------
# Entries of a point gradient descent reached within this of each other count as equal
# when its group is sought for a proof or a catalogue spectrum.
RUN_END_SYMMETRY = 1e-6
# The same for a point Newton found in a fixed-point space (accurate to ~1e-12).
NEWTON_POINT_SYMMETRY = 1e-8
# ... and for a degenerate one (zero Hessian eigenvalues, off a manifold of ReLU's
# parallel neurons): where the gradient vanishes to third order along a direction,
# float64 locates the zero to ~1e-5 only.
DEGENERATE_POINT = 1e-4
# A Hessian eigenvalue at a critical point found by Newton counts as zero within this.
ZERO_EIGENVALUE = 1e-7
# Newton in a fixed-point space of a bounded activation (erf, tanh...) can run off with
# neurons of ever larger norm whose gradient only tends to zero: a point with a row of
# this norm is not a critical point.
SATURATED_ROW = 100.0

# --- Newton and proofs -------------------------------------------------------------------
# A Newton start in a fixed-point space ends at a critical point when its reduced
# gradient is below this.
CRITICAL_GRAD = 1e-11
# Newton may move a stored point at most this far before it is called a different point.
MAX_MOVE = 1e-6
# The smallest box a proof uses around a point.
SMALLEST_RADIUS = 1e-9

# --- Size limits (parameters) --------------------------------------------------------
# The full-space proof costs (n d)^2.5: above this many parameters it is not tried.
FULL_SPACE_PROOF = 900
# The same inside `critical`, which proves many points, most of them saddles.
FULL_SPACE_PROOF_IN_SEARCH = 400
# Jets cost O(m^2) per operation in m parameters: a proof in Fix(G) is declined when
# some Fix(K) of its blocks has more (the full-space route is then the better one).
FIX_FOR_PROOF = 400
# Catalogue spectra are left out where some Fix(K) has more parameters than this.
FIX_FOR_SPECTRUM = 200
