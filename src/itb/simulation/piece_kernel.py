"""The cohort engine's compiled kernel: the day's program pieces for every patient (numba).

:func:`run_pieces` carries out, one patient at a time with its state in local
variables, what the cohort engine does inside the shared program pieces of a day
(hours after the day's start ``t0``): in each piece a running bolus first, then
the program; each split where the reservoir falls to the low-residual volume
([C101]); inside each part the pump's true flow (accuracy factor, occlusion,
dryness), the outlet loss (disconnection, leak), plug flow through the dead
space (slugs, tip first), the fraction reaching the CSF (tip migration, a mass
at the tip, a spinal fluid leak), a bridge while the pump is out, the reservoir
running dry, the low- and empty-reservoir alarms on the calculated volume, and
the battery (ERI, EOS). The patient is advanced exactly over every
constant-rate part in its modal coordinates ``V^-1 x`` (from the whole piece's
cached factors, or the part's exponentials), or, for a patient whose rates
nearly coincide, in its states with the whole piece's ``(Phi, Gamma)`` or a
scaled Taylor exponential of the input-augmented system.

The semantics are those of the single-patient domain path, checked patient by
patient in ``tests/property/test_engines_agree.py``. Compiled once and cached on
disk (``cache=True``, in ``__pycache__`` beside this file); the first run on a
machine compiles it (about 15 s).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from itb.domain.patient import MODES_MIN_RELATIVE_GAP
from itb.domain.units import HOURS_PER_DAY, HOURS_PER_YEAR
from itb.simulation.cohort import CohortArrays

__all__ = [
    "COLUMNS",
    "EVENT_KINDS",
    "PARAMS",
    "day_end_observation",
    "modal_forms",
    "observation_inputs",
    "propagators",
    "run_pieces",
]

EVENT_KINDS = (
    "bolus_end",
    "reservoir_dry",
    "low_reservoir",
    "empty_reservoir",
    "elective_replacement_indicator",
    "end_of_service",
)
"""Columns of the kernel's event-time array (NaN: not in this piece)."""
_EV_BOLUS_END, _EV_DRY, _EV_LOW, _EV_EMPTY, _EV_ERI, _EV_EOS = range(6)

COLUMNS = (
    "occlusion",
    "disconnection",
    "motor_stall",
    "leak",
    "migration",
    "mass",
    "csf_leak",
    "alarm_low_reservoir",
    "alarm_empty_reservoir",
    "alarm_eri",
    "alarm_eos",
)
"""Order of the kernel's column-index argument (fault, complication and alarm columns)."""
_C_OCC, _C_DISC, _C_STALL, _C_LEAK, _C_MIG, _C_MASS, _C_CSF, _C_LOW, _C_EMPTY, _C_ERI, _C_EOS = (
    range(11)
)

PARAMS = (
    "low_reservoir_alarm_ml",
    "empty_reservoir_alarm_ml",
    "has_alarms",
    "low_residual_volume_ml",
    "low_residual_flow_fraction",
    "leak_fraction_lost",
    "migration_fraction_to_csf",
    "complications",
    "mass_fraction_to_csf",
    "csf_leak_fraction_to_csf",
    "drain_base_per_h",
    "drain_per_ml",
    "hard_limit_from_epoch_h",
    "eri_to_eos_h",
    "replacement_after_eri_days",
)
"""Order of the kernel's scalar-parameter argument (flags as 0 or 1)."""
(
    _P_THR,
    _P_EMPTY,
    _P_ALARMS,
    _P_V_LOW,
    _P_LOW_FRAC,
    _P_LEAK_LOST,
    _P_MIGRATION,
    _P_COMPLICATIONS,
    _P_MASS,
    _P_CSF_LEAK,
    _P_DRAIN_BASE_H,
    _P_DRAIN_PER_ML,
    _P_HARD_H,
    _P_ERI_TO_EOS_H,
    _P_REPLACE_AFTER,
) = range(15)

_EPS_ML = 1e-12
"""Same volume tolerance as the domain pump (threshold crossings at a breakpoint)."""
_TINY_ML = 1e-15
"""Same slug dust threshold as the domain's dead space."""
_MAX_CONDITION = 1e6
"""Eigenvector bases worse conditioned than this step the states instead (error ~ cond x eps)."""


# ------------------------------------------------------------------ set-up (numpy)


def modal_forms(
    m: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Eigen-decompositions of the system matrices ``m`` (N, S, S): rates (N, S),
    vectors (N, S, S), their inverses (N, S, S), and whether each is well-conditioned
    (N,): real, distinct rates (relative gap above the domain's), an invertible, well-conditioned basis."""
    n, s, _ = m.shape
    rates = np.zeros((n, s))
    vectors = np.zeros((n, s, s))
    inverse = np.zeros((n, s, s))
    well = np.zeros(n, dtype=np.bool_)
    if n == 0:
        return rates, vectors, inverse, well
    lam, vec = np.linalg.eig(m)
    real = np.all(np.abs(lam.imag) == 0.0, axis=1)
    lam_r = lam.real
    gap = np.abs(lam_r[:, :, None] - lam_r[:, None, :])
    scale = np.maximum(np.abs(lam_r[:, :, None]), np.abs(lam_r[:, None, :]))
    off = ~np.eye(s, dtype=np.bool_)[None, :, :]
    distinct = np.all(~off | (gap > MODES_MIN_RELATIVE_GAP * scale), axis=(1, 2))
    vec_r = vec.real
    cond = np.linalg.cond(vec_r)
    ok = real & distinct & np.isfinite(cond) & (cond < _MAX_CONDITION)
    rates[ok] = lam_r[ok]
    vectors[ok] = vec_r[ok]
    inverse[ok] = np.linalg.inv(vec_r[ok])
    well[ok] = True
    return rates, vectors, inverse, well


def observation_inputs(cohort: CohortArrays) -> tuple[np.ndarray, ...]:
    """What :func:`_observe` reads of the patients and the sign model, in its order."""
    signs = cohort.signs
    return (
        cohort.ec50_mcg_per_ml,
        cohort.hill,
        cohort.mas_floor,
        cohort.baseline_mas,
        cohort.tolerance_max_fraction,
        cohort.tolerance_time_constant_h,
        cohort.tolerance_drift_per_year,
        cohort.severe_threshold,
        np.array(
            [
                signs.withdrawal_early_threshold,
                signs.hypotonia_occupancy,
                signs.hypotonia_hill,
                signs.rebound_mas_per_unit,
                HOURS_PER_YEAR,
            ]
        ),
        np.array([t.threshold for t in signs.overdose_stages], dtype=np.float64),
        np.array([t.stage for t in signs.overdose_stages], dtype=np.int64),
    )


def day_end_observation(
    cohort: CohortArrays, x: np.ndarray, therapy_h: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MAS, withdrawal stage and overdose stage of every patient as the kernel computes them
    at a day's end (for checking it against :func:`itb.simulation.cohort.observe`)."""
    return _observe_all(
        np.ascontiguousarray(x), therapy_h, (None,) * 5 + observation_inputs(cohort)
    )


def propagators(m: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(Phi, Gamma)`` of every patient for every length: shapes (N, L, S, S), (N, L, S)
    (exact, from the matrix exponential of the input-augmented system)."""
    from scipy.linalg import expm

    n, s, _ = m.shape
    phi = np.zeros((n, len(lengths), s, s))
    gamma = np.zeros((n, len(lengths), s))
    for k, dt in enumerate(lengths):
        aug = np.zeros((n, s + 1, s + 1))
        aug[:, :s, :s] = m * dt
        aug[:, 0, s] = dt
        e = expm(aug) if n else aug
        phi[:, k] = e[:, :s, :s]
        gamma[:, k] = e[:, :s, s]
    return phi, gamma


# ------------------------------------------------------------------ the patient


@njit(cache=True)
def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n, m = a.shape[0], b.shape[1]
    out = np.zeros((n, m))
    for i in range(n):
        for k in range(a.shape[1]):
            aik = a[i, k]
            for j in range(m):
                out[i, j] += aik * b[k, j]
    return out


@njit(cache=True)
def _taylor_augmented(m: np.ndarray, dt: float, x: np.ndarray, rate: float) -> None:
    """``x <- Phi x + Gamma rate`` from ``exp`` of the input-augmented system by scaling
    and squaring with a Taylor series (for the rare ill-conditioned patient), in place."""
    s = m.shape[0]
    k = s + 1
    a = np.zeros((k, k))
    for i in range(s):
        for j in range(s):
            a[i, j] = m[i, j] * dt
    a[0, s] = dt
    norm = 0.0
    for j in range(k):
        col = 0.0
        for i in range(k):
            col += abs(a[i, j])
        norm = max(norm, col)
    squarings = 0
    if norm > 0.5:
        squarings = math.ceil(math.log2(norm / 0.5))
    scale = 0.5**squarings
    for i in range(k):
        for j in range(k):
            a[i, j] *= scale
    e = np.eye(k)
    term = np.eye(k)
    for order in range(1, 20):
        term = _matmul(term, a) / order
        e += term
    for _ in range(squarings):
        e = _matmul(e, e)
    y = np.zeros(s)
    for i in range(s):
        acc = e[i, s] * rate
        for j in range(s):
            acc += e[i, j] * x[j]
        y[i] = acc
    for i in range(s):
        x[i] = y[i]


@njit(cache=True)
def _sigmoid(x: float, hill: float) -> float:
    """``x**h / (1 + x**h)`` for x >= 0, safe for large x (as the domain computes it)."""
    if x <= 0.0:
        return 0.0
    if x < 1.0:
        xh = x**hill
        return float(xh / (1.0 + xh))
    return float(1.0 / (1.0 + x ** (-hill)))


@njit(cache=True)
def _observe(i: int, x: np.ndarray, therapy_h: float, ob: tuple) -> tuple[float, int, int]:  # type: ignore[type-arg]
    """MAS, withdrawal stage and overdose stage of patient ``i`` with states ``x[i]``: the
    observation map of :func:`itb.simulation.cohort.observe` (and the domain's
    :func:`itb.domain.patient.observe`), compiled for the parts the clinic acts on at a
    day's end (tested equal to it)."""
    ec50_0, hill, mas_floor, baseline_mas = ob[5], ob[6], ob[7], ob[8]
    t_max, t_tau, t_drift, severe = ob[9], ob[10], ob[11], ob[12]
    sign, od_threshold, od_stage = ob[13], ob[14], ob[15]
    early, hyp_occ, hyp_hill, rebound_per, hours_per_year = (
        sign[0], sign[1], sign[2], sign[3], sign[4],
    )  # fmt: skip
    tol = (
        1.0
        + t_max[i] * -math.expm1(-therapy_h / t_tau[i])
        + t_drift[i] * therapy_h / hours_per_year
    )
    ec50 = ec50_0[i] * tol
    occ = x[i, 2] / ec50
    effect = _sigmoid(occ, hill[i])
    loss = _sigmoid(occ / hyp_occ, hyp_hill)
    w = max(x[i, 4], 0.0) / ec50
    rebound = rebound_per * max(0.0, w - early)
    relaxed = baseline_mas[i] - max(baseline_mas[i] - mas_floor[i], 0.0) * effect
    mas = min(max(relaxed * (1.0 - loss) + rebound, 0.0), 4.0)
    stage = 0
    if w >= early:
        stage = 1
    if w >= max(severe[i], early):
        stage = 2
    od = 0
    for j in range(od_threshold.shape[0]):
        if occ >= od_threshold[j] and od_stage[j] > od:
            od = od_stage[j]
    return mas, stage, od


@njit(cache=True)
def _observe_all(
    x: np.ndarray,
    therapy_h: np.ndarray,
    ob: tuple,  # type: ignore[type-arg]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = x.shape[0]
    mas = np.zeros(n)
    stage = np.zeros(n, dtype=np.int64)
    od = np.zeros(n, dtype=np.int64)
    for i in range(n):
        mas[i], stage[i], od[i] = _observe(i, x, therapy_h[i], ob)
    return mas, stage, od


@njit(cache=True)
def run_pieces(
    t0: float,
    piece_a: np.ndarray,
    piece_b: np.ndarray,
    piece_slot: np.ndarray,
    piece_length: np.ndarray,
    q_slots: np.ndarray,
    st: tuple,  # type: ignore[type-arg]
    ob: tuple,  # type: ignore[type-arg]
) -> int:
    """The day's program pieces ``[piece_a[k], piece_b[k])`` (hours after ``t0``) for every
    patient, one patient at a time with its state in local variables. In each piece a
    running bolus first, then the program at commanded ``q_slots[piece_slot[k]]`` mL/h;
    each split where the reservoir falls to the low-residual volume. ``piece_length[k]``
    indexes the cached propagators of the whole piece. ``st`` holds the engine's arrays (the
    order of :meth:`itb.simulation.vector_engine._ArmRun._run_pieces`), changed in place.
    When the pieces end the day, ``ob`` receives each patient's state and the observation
    the clinic acts on (:func:`_observe`). Returns the first patient whose dead space ran
    out of slots, or -1."""
    (
        y_arr,
        delivered,
        therapy,
        actual,
        calc,
        conc,
        slug_v,
        slug_c,
        commanded,
        battery_used,
        battery_epoch,
        eri_t,
        eos_t,
        eos_stopped,
        replace_day,
        eri_reached,
        eos_reached,
        dry,
        alarms,
        acc,
        fault_on,
        comp_on,
        explanted,
        bridge_rate,
        bolus_on,
        bolus_left,
        bolus_rate,
        lam,
        vec,
        vinv,
        well,
        sysm,
        cache_len,
        e_cache,
        g_cache,
        ill_row,
        phi_cache,
        gam_cache,
        cols,
        p,
        events,
        record,
    ) = st
    n = y_arr.shape[0]
    k = slug_v.shape[1]
    s = y_arr.shape[1]
    n_pieces = piece_a.shape[0]
    c_occ, c_disc, c_stall = cols[_C_OCC], cols[_C_DISC], cols[_C_STALL]
    c_leak, c_mig, c_mass, c_csf = cols[_C_LEAK], cols[_C_MIG], cols[_C_MASS], cols[_C_CSF]
    c_low, c_empty, c_eri, c_eos = cols[_C_LOW], cols[_C_EMPTY], cols[_C_ERI], cols[_C_EOS]
    thr, empty_level, has_alarms = p[_P_THR], p[_P_EMPTY], p[_P_ALARMS] > 0.0
    v_low, low_frac = p[_P_V_LOW], p[_P_LOW_FRAC]
    leak_lost, migration = p[_P_LEAK_LOST], p[_P_MIGRATION]
    with_complications = p[_P_COMPLICATIONS] > 0.0
    drain_base, drain_per_ml, hard_h = p[_P_DRAIN_BASE_H], p[_P_DRAIN_PER_ML], p[_P_HARD_H]
    day_end, x_out, mas_out, stage_out, od_out = ob[0], ob[1], ob[2], ob[3], ob[4]
    y = np.zeros(s)
    w = np.zeros(s)
    left = np.zeros(k)
    new_v = np.zeros(k)
    new_c = np.zeros(k)
    failed = -1
    for i in range(n):
        # ---- the patient's state, in local variables for the day
        for r in range(s):
            y[r] = y_arr[i, r]
        modal = well[i]
        act, cal, cn, comm = actual[i], calc[i], conc[i], commanded[i]
        b_used, e_ri, e_os, eos_off = battery_used[i], eri_t[i], eos_t[i], eos_stopped[i]
        deliv, ther = delivered[i], therapy[i]
        b_on, b_left, b_rate = bolus_on[i], bolus_left[i], bolus_rate[i]
        occluded, disc, stalled = fault_on[i, c_occ], fault_on[i, c_disc], fault_on[i, c_stall]
        leaking, migrated = fault_on[i, c_leak], fault_on[i, c_mig]
        out = explanted[i]
        bridge = bridge_rate[i]
        factor = acc[i]
        tip0 = migration if migrated else 1.0
        if with_complications:
            if comp_on[i, c_mass]:
                tip0 *= p[_P_MASS]
            if comp_on[i, c_csf]:
                tip0 *= p[_P_CSF_LEAK]
        loss = 1.0 if disc else (leak_lost if leaking else 0.0)
        for piece in range(n_pieces):
            a = piece_a[piece]
            b = piece_b[piece]
            whole = piece_length[piece]
            running = not stalled and not eos_off and not out
            prog_cmd = q_slots[piece_slot[piece], i] if running else 0.0
            active = b_on and running
            split = min(a + b_left / b_rate, b) if active else a
            for stage in range(2):
                if stage == 0:
                    if not active:
                        continue
                    lo, hi, cmd = a, split, b_rate
                else:
                    lo, hi = split, b
                    cmd = 0.0 if b_on else prog_cmd
                # split where the true flow falls to the low-residual volume
                eos_rel = e_os - t0 if (math.isfinite(e_os) and not eos_off) else math.inf
                mid = hi
                if v_low > 0.0:
                    q = cmd * factor if (cmd > 0.0 and not occluded and act > _EPS_ML) else 0.0
                    if act <= v_low + _EPS_ML:
                        q *= low_frac
                    if act > v_low + _EPS_ML and q > 0.0:
                        t_low = lo + (act - v_low) / q
                        if t_low < min(hi, max(eos_rel, lo)):
                            mid = t_low
                used = 0.0
                for part in range(2):
                    if part == 0:
                        pa, pb = lo, mid
                    elif mid < hi:
                        pa, pb = mid, hi
                        # an ERI in the first part sets the end of service
                        eos_rel = e_os - t0 if (math.isfinite(e_os) and not eos_off) else math.inf
                    else:
                        break
                    # ---- one part [pa, pb) where the true flow keeps one factor
                    e = min(max(eos_rel, pa), pb)  # the motor runs over [pa, e)
                    q_true = cmd * factor if (cmd > 0.0 and not occluded and act > _EPS_ML) else 0.0
                    if v_low > 0.0 and act <= v_low + _EPS_ML:
                        q_true *= low_frac
                    t_dry = pa + act / q_true if q_true > 0.0 else math.inf
                    flow_end = min(e, t_dry) if q_true > 0.0 else pa
                    q_in = q_true - q_true * loss
                    flowing = q_in > 0.0 and flow_end > pa
                    n_occ = 0  # the slugs are kept tip first, the occupied ones first
                    while n_occ < k and slug_v[i, n_occ] > 0.0:
                        n_occ += 1
                    # constant rates into the CSF: each slug, fresh drug, then the bridge only
                    # (past the last occupied slug every length is zero)
                    start = pa
                    cum = 0.0
                    for j in range(n_occ + 2):
                        if j < n_occ:
                            cum += slug_v[i, j]
                            if not flowing:
                                end = pa
                            elif j == n_occ - 1 and slug_c[i, j] == cn:
                                end = flow_end  # the last slug runs on into fresh drug like it
                            else:
                                end = min(pa + cum / q_in, flow_end)
                            end = max(end, start)
                            rate = q_in * slug_c[i, j] * tip0
                        elif j == n_occ:
                            end = max(flow_end if flowing else pa, start)
                            rate = q_in * cn * tip0
                        else:
                            end = pb
                            rate = bridge
                        dt = end - start
                        start = end
                        if dt <= 0.0:
                            continue
                        # ---- the patient, exactly over dt at rate
                        cached = whole >= 0 and cache_len[whole] == dt
                        if modal:  # in modal coordinates: diagonal
                            if cached:
                                for r in range(s):
                                    y[r] = e_cache[i, whole, r] * y[r] + g_cache[i, whole, r] * rate
                            else:
                                for r in range(s):
                                    z = lam[i, r] * dt
                                    phi1 = 1.0 if z == 0.0 else math.expm1(z) / z
                                    y[r] = math.exp(z) * y[r] + dt * phi1 * vinv[i, r, 0] * rate
                        else:  # in the states themselves, clipped as the domain clips
                            if cached:
                                for r in range(s):
                                    acc_r = gam_cache[ill_row[i], whole, r] * rate
                                    for c in range(s):
                                        acc_r += phi_cache[ill_row[i], whole, r, c] * y[c]
                                    w[r] = acc_r
                                for r in range(s):
                                    y[r] = w[r]
                            else:
                                _taylor_augmented(sysm[i], dt, y, rate)
                            for r in range(4):
                                if y[r] < 0.0:
                                    y[r] = 0.0
                        on = deliv > 0.0 or rate > 0.0
                        deliv += rate * dt
                        ther = ther + dt if on else 0.0

                    # ---- the pump at the part's end
                    if q_true > 0.0 and t_dry <= e:
                        dry[i] += 1
                        if record:
                            events[i, _EV_DRY] = t0 + t_dry
                        moved = act
                        act = 0.0
                    else:
                        moved = q_true * (flow_end - pa)
                        rest = max(act - moved, 0.0)
                        act = 0.0 if rest < _EPS_ML else rest
                    if flowing and (slug_v[i, 1] > 0.0 or slug_c[i, 0] != cn):
                        # plug flow (a dead space holding only the reservoir's drug is
                        # unchanged): what was pushed in enters at the pump end, as much
                        # leaves the tip
                        volume = moved - moved * loss
                        before = 0.0
                        total = 0.0
                        for j in range(k):
                            v = slug_v[i, j]
                            rest = max(v - max(volume - before, 0.0), 0.0)
                            left[j] = 0.0 if rest <= _TINY_ML else rest
                            before += v
                            total += v
                        count = 0
                        kept = 0.0
                        for j in range(k):
                            new_v[j] = 0.0
                            new_c[j] = 0.0
                        for j in range(k):
                            if left[j] > 0.0:
                                new_v[count] = left[j]
                                new_c[count] = slug_c[i, j]
                                count += 1
                                kept += left[j]
                        fresh = min(volume, total - kept)
                        last = max(count - 1, 0)
                        if fresh > _TINY_ML:
                            if count > 0 and new_c[last] == cn:
                                new_v[last] += fresh
                            elif count >= k:
                                if failed < 0:
                                    failed = i
                            else:
                                new_v[count] = fresh
                                new_c[count] = cn
                        for j in range(k):
                            slug_v[i, j] = new_v[j]
                            slug_c[i, j] = new_c[j]
                    cmd_ml = cmd * (e - pa)
                    used += cmd_ml
                    comm += cmd_ml
                    if has_alarms and cmd > 0.0:
                        if cal > thr + _EPS_ML and cal - cmd_ml <= thr + _EPS_ML:
                            alarms[i, c_low] += 1
                            if record:
                                events[i, _EV_LOW] = t0 + pa + (cal - thr) / cmd
                        if cal > empty_level + _EPS_ML and cal - cmd_ml <= empty_level + _EPS_ML:
                            alarms[i, c_empty] += 1
                            if record:
                                events[i, _EV_EMPTY] = t0 + pa + (cal - empty_level) / cmd
                    cal = max(0.0, cal - cmd_ml)

                    # ---- the battery: drain linear in the commanded volume up to ERI, then EOS
                    pre_eri = not math.isfinite(e_ri)
                    drain = 0.0 if out else drain_base + drain_per_ml * cmd
                    used_end = b_used + drain * (pb - pa)
                    t_cap = t0 + pa + (1.0 - b_used) / drain if drain > 0.0 else math.inf
                    t_eri = min(
                        t_cap if used_end >= 1.0 - 1e-12 else math.inf, battery_epoch[i] + hard_h
                    )
                    new_eri = pre_eri and t_eri <= t0 + pb
                    if pre_eri and not new_eri:
                        b_used = used_end
                    if new_eri:
                        e_ri = max(t_eri, t0 + pa)
                        e_os = e_ri + p[_P_ERI_TO_EOS_H]
                        if has_alarms:
                            alarms[i, c_eri] += 1
                        if record:
                            events[i, _EV_ERI] = e_ri
                        eri_reached[i] = True
                        replace_day[i] = (
                            math.floor(e_ri / HOURS_PER_DAY) + 1.0 + p[_P_REPLACE_AFTER]
                        )
                    if not eos_off and e_os <= t0 + pb:
                        eos_off = True
                        eos_reached[i] = True
                        if has_alarms:
                            alarms[i, c_eos] += 1
                        if record:
                            events[i, _EV_EOS] = e_os
                if stage == 0:
                    b_left -= used
                    if b_left <= _EPS_ML:
                        b_on = False
                        if record:
                            events[i, _EV_BOLUS_END] = t0 + split
        # ---- the day's end: the states (clipped as the domain clips: the modal coordinates
        # follow a clip) and what the clinic sees
        if day_end:
            if modal:
                clipped = False
                for r in range(s):
                    acc_r = 0.0
                    for c in range(s):
                        acc_r += vec[i, r, c] * y[c]
                    if r < 4 and acc_r < 0.0:
                        acc_r = 0.0
                        clipped = True
                    x_out[i, r] = acc_r
                if clipped:
                    for r in range(s):
                        acc_r = 0.0
                        for c in range(s):
                            acc_r += vinv[i, r, c] * x_out[i, c]
                        y[r] = acc_r
            else:
                for r in range(s):
                    x_out[i, r] = y[r]
            mas_out[i], stage_out[i], od_out[i] = _observe(i, x_out, ther, ob)
        # ---- back into the arrays
        for r in range(s):
            y_arr[i, r] = y[r]
        actual[i], calc[i], commanded[i] = act, cal, comm
        battery_used[i], eri_t[i], eos_t[i], eos_stopped[i] = b_used, e_ri, e_os, eos_off
        delivered[i], therapy[i] = deliv, ther
        bolus_on[i], bolus_left[i] = b_on, b_left
    return failed
