"""``link.bandwidth_profile`` (prfaas_plan/planning/bandwidth_profile.py): a bad CSV is one line
naming file, line and problem; the planner plans with the profile's worst fraction (a profile
whose trough is half its peak plans exactly as the link halved); the simulator replays it."""

from pathlib import Path

import pytest

from prfaas_plan.errors import PlanError
from prfaas_plan.planning.bandwidth_profile import read_bandwidth_profile
from prfaas_plan.planning.overrides import Override
from prfaas_plan.planning.planner import optimize
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.simulation.run import simulate_scenario


def write(tmp_path, text, name="profile.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, message", [
    ("t,gbit\n0,1\n", r"line 1: expected the header t_s,gbit_per_s"),
    ("t_s,gbit_per_s\n", r"no rows after the header"),
    ("t_s,gbit_per_s\n0,100\n60,abc\n", r"line 3: not a number"),
    ("t_s,gbit_per_s\n0,100\n60\n", r"line 3: expected 2 values"),
    ("t_s,gbit_per_s\n0,100\n60,90\n60,80\n", r"line 4: t_s must increase, got 60 after 60"),
    ("t_s,gbit_per_s\n-1,100\n", r"line 2: t_s must be a finite number >= 0"),
    ("t_s,gbit_per_s\n0,100\n60,0\n", r"line 3: gbit_per_s must be a finite number > 0"),
    ("t_s,gbit_per_s\n0,inf\n", r"line 2: gbit_per_s must be a finite number > 0"),
])
def test_bad_profiles_name_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(PlanError, match=rf"profile\.csv: {message}"):
        read_bandwidth_profile(path)


def test_shape_worst_and_mean(tmp_path):
    """Rows 200, 100, 200 Gbit/s at 0, 3600, 7200 s: fractions 1, 0.5, 1; worst 0.5; mean over
    three one-hour steps 2.5 / 3."""
    prof = read_bandwidth_profile(write(tmp_path, "t_s,gbit_per_s\n0,200\n3600,100\n7200,200\n"))
    assert prof.frac == (1.0, 0.5, 1.0) and prof.worst_frac == 0.5 and prof.mean_frac == pytest.approx(2.5 / 3)
    assert prof.schedule(1e10, 7200.0) == ((0.0, 1e10), (3600.0, 5e9))


def test_planner_uses_the_worst_fraction(tmp_path):
    """paper-case-study's fixed 100 Gbit/s link with a profile sagging to 10%: the same plan as a
    fixed 10 Gbit/s link (where the link binds), and the plan's link stays the 100 Gbit/s in place."""
    path = write(tmp_path, "t_s,gbit_per_s\n0,10\n36000,1\n64800,10\n")
    sagged = optimize(load_scenario("paper-case-study", [Override("link.bandwidth_profile", str(path))]), compare_modes=False)
    halved = optimize(load_scenario("paper-case-study", [Override("link.bandwidth_gbit_per_s", 10.0)]), compare_modes=False)
    plain = optimize(load_scenario("paper-case-study"), compare_modes=False)
    assert sagged["throughput_req_per_s"] == pytest.approx(halved["throughput_req_per_s"], rel=1e-9)
    assert sagged["threshold_tokens"] == pytest.approx(halved["threshold_tokens"], rel=1e-9)
    assert sagged["link_gbit_per_s"] == pytest.approx(100.0) and sagged["throughput_req_per_s"] < plain["throughput_req_per_s"]


def test_simulation_replays_the_profile(tmp_path):
    """A 20-minute run whose link drops to 5% of its peak at 600 s: the egress of the minutes
    after the drop is capped at 5 Gbit/s, and the result names the profile."""
    path = write(tmp_path, "t_s,gbit_per_s\n100,20\n700,1\n")
    sc = load_scenario("paper-case-study", [Override("link.bandwidth_profile", str(path))])
    r = simulate_scenario(sc, load=0.8, duration_s=1200.0, warmup_s=60.0)
    assert r["engine"] == "event loop" and r["link_profile"]["worst_frac"] == 0.05 and r["link_profile"]["changes"] == 2
    by_minute = r["egress_gbit_per_s_by_minute"]
    assert max(by_minute[11:]) <= 5.0 * (1 + 1e-9) < max(by_minute[:10])
    with pytest.raises(PlanError, match="not both"):
        simulate_scenario(sc, load=0.8, duration_s=1200.0, link_drop_at_s=100.0, link_drop_frac=0.5)


def test_a_missing_profile_is_one_line(tmp_path):
    with pytest.raises(PlanError, match=r"nope\.csv: bandwidth profile file not found"):
        load_scenario("paper-case-study", [Override("link.bandwidth_profile", str(tmp_path / "nope.csv"))])


@pytest.mark.parametrize("key", ["bandwidth_profile", "connections", "loss_frac"])
def test_the_fleet_planner_refuses_link_keys_it_does_not_model(tmp_path, key):
    """A one-pair scenario with candidate parts goes to the fleet planner, whose links know no
    profile, connections or loss: on old main it planned as if the key were absent (the same
    200 Gbit/s link and 35.68 req/s with the evening-sag profile as without). Now one line naming
    the file and key, as `sites:` links (links[i]) get."""
    import shutil
    import sys

    from prfaas_plan.catalog.paths import catalog_dir

    sys.path.insert(0, str(Path(__file__).parent))
    from fleetcases import one_pair

    shutil.copy(catalog_dir("scenarios") / "evening-sag.csv", tmp_path)
    value = {"bandwidth_profile": "evening-sag.csv", "connections": 8, "loss_frac": 0.0}[key]
    link = {"usd_per_gbit_per_s_hour": 0.225, "purchasable_gbit_per_s": [100, 200, 400], "rtt_ms": 10, key: value}
    if key == "loss_frac":
        link["connections"] = 8  # refused first: either names a key the fleet planner cannot use
    path = one_pair(tmp_path, "fleet", True, {"kind": "budget", "budget_usd_per_hour": 3000}, link=link)
    with pytest.raises(PlanError, match=r"fleet\.yaml: key 'link\.(bandwidth_profile|connections)': the fleet planner cannot use it: .*one-pair scenarios only") as e:
        load_scenario(path)
    assert "\n" not in str(e.value)
    with pytest.raises(PlanError, match=r"key 'links\[0\]\.bandwidth_profile': the fleet planner cannot use it"):
        load_scenario("multi-site-case-study", [Override("links[0].bandwidth_profile", str(tmp_path / "evening-sag.csv"))])
