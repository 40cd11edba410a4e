"""Template rendering of asterisk-config/ and dialplans/, checked without running Asterisk.

The real-Asterisk tests (test_asterisk_calls.py) prove the rendered files load; these pin
down what the settings put into them, so a template edit that drops a port, leaks a
secret into git or reopens anonymous calls fails fast and with a readable message.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from ivr import asterisk_runtime as rt
from renraku.settings import Settings, ensure_secret, load_settings

MODULES = "/usr/lib/x86_64-linux-gnu/asterisk/modules"
# Modules the issue names as required for the lines Renraku runs.
REQUIRED_MODULES = {
    "chan_pjsip.so", "res_pjsip.so", "res_pjsip_session.so", "res_rtp_asterisk.so",
    "res_pjsip_endpoint_identifier_ip.so", "res_pjsip_caller_id.so",
    "res_pjsip_authenticator_digest.so", "pbx_config.so", "res_agi.so", "app_playback.so",
    "app_record.so", "app_read.so", "app_senddtmf.so", "app_dial.so", "app_amd.so",
    "func_callerid.so", "func_channel.so", "format_wav.so", "format_pcm.so",
    "format_sln.so", "codec_ulaw.so", "codec_alaw.so", "codec_resample.so",
    "res_pjsip_acl.so",  # the SIP ban's ACL
}


def _settings(tmp_path: Path, **extra: str) -> Settings:
    env = {
        "RENRAKU_DATA_DIR": str(tmp_path / "data"),
        "RENRAKU_SIP_PORT": "15060",
        "RENRAKU_AMI_PORT": "15038",
        "RENRAKU_FASTAGI_PORT": "14573",
        "RENRAKU_RTP_START": "31000",
        "RENRAKU_RTP_END": "31099",
        "RENRAKU_TRUNK_PEER": "127.0.0.9:15070",
        **{f"RENRAKU_{k.upper()}": v for k, v in extra.items()},
    }
    return load_settings(None, env=env)


@pytest.fixture
def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Settings, Path]:
    # The module folder is looked up on the installed Asterisk; Debian's path stands in.
    monkeypatch.setattr(rt, "_modules_dir", lambda _root: MODULES)
    settings = _settings(tmp_path)
    inst = rt.ivr_instance(settings, render_only=True)
    return settings, inst.etc


def _sections(text: str) -> dict[str, list[dict[str, str]]]:
    """Asterisk's config format: [name] headers (repeatable), key = value or key => value."""
    out: dict[str, list[dict[str, str]]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if header := re.fullmatch(r"\[([^\]]+)\](\(.*\))?", line):
            current = {}
            out.setdefault(header.group(1), []).append(current)
            continue
        key, _sep, value = re.split(r"\s*(=>?)\s*", line, maxsplit=1)
        assert current is not None, f"setting outside a section: {line!r}"
        current.setdefault(key, value)  # modules.conf repeats "load": read it by regex
    return out


def test_every_template_renders_without_leftovers(rendered: tuple[Settings, Path]) -> None:
    _, etc = rendered
    names = {p.name for p in rt.CONFIG_TEMPLATES.glob("*.conf")}
    assert names <= {p.name for p in etc.glob("*.conf")}
    for conf in etc.glob("*.conf"):
        text = conf.read_text()
        assert "{{" not in text and "{%" not in text, conf.name
        # Secrets are inside: only the owner may read the rendered files.
        assert stat.S_IMODE(conf.stat().st_mode) == 0o600, conf.name
    for dialplan in rt.DIALPLANS.glob("*.conf"):
        assert (etc / "dialplans" / dialplan.name).read_text() == dialplan.read_text()


def test_asterisk_conf_points_at_the_runtime_folders(rendered: tuple[Settings, Path]) -> None:
    settings, etc = rendered
    dirs = _sections((etc / "asterisk.conf").read_text())["directories"][0]
    home = settings.data_dir.resolve() / "asterisk" / "ivr"
    assert dirs["astetcdir"] == str(home / "etc")
    assert dirs["astmoddir"] == MODULES
    # home/run, or a short folder in /tmp under a deep data folder (test_control_socket_…)
    assert dirs["astrundir"] == str(rt.run_dir(home))
    assert dirs["astlogdir"] == str(home / "log")
    assert dirs["astspooldir"] == str(home / "spool")
    # Prompts are sounds/<lang>/renraku/<key>.wav under the data folder.
    assert dirs["astdatadir"] == str(settings.data_dir.resolve())
    assert settings.sounds_dir.resolve() == Path(dirs["astdatadir"]) / "sounds"


def test_modules_are_explicit_and_complete(rendered: tuple[Settings, Path]) -> None:
    _, etc = rendered
    text = (etc / "modules.conf").read_text()
    assert re.search(r"(?m)^autoload\s*=\s*no\s*$", text)
    loaded = set(re.findall(r"(?m)^load\s*=>\s*(\S+)", text))
    assert REQUIRED_MODULES <= loaded, sorted(REQUIRED_MODULES - loaded)
    # Anonymous calls: the identifier that would map unknown peers to an endpoint stays out.
    assert "res_pjsip_endpoint_identifier_anonymous.so" not in loaded
    assert "chan_sip.so" not in loaded


def test_ami_is_loopback_only_with_the_generated_secret(
    rendered: tuple[Settings, Path],
) -> None:
    settings, etc = rendered
    manager = _sections((etc / "manager.conf").read_text())
    general = manager["general"][0]
    assert general["enabled"] == "yes"
    assert general["bindaddr"] == "127.0.0.1"
    assert general["port"] == "15038"
    user = manager[settings.ami_user][0]
    secret = ensure_secret(settings, "ami_secret")
    assert len(secret) >= 24 and user["secret"] == secret
    assert (settings.data_dir / "ami_secret").read_text().strip() == secret
    assert stat.S_IMODE((settings.data_dir / "ami_secret").stat().st_mode) == 0o600
    assert user["deny"] == "0.0.0.0/0.0.0.0"
    assert user["permit"].startswith("127.")
    # Least privilege: no config/command/system-changing classes, nor "all".
    for direction in ("read", "write"):
        classes = set(user[direction].split(","))
        assert not classes & {"all", "config", "command"}, (direction, classes)
    assert set(user["write"].split(",")) == {"originate", "call", "reporting"}
    # A second render keeps the same secret (AMI clients keep working across restarts).
    rt.ivr_instance(settings, render_only=True)
    assert _sections((etc / "manager.conf").read_text())[settings.ami_user][0]["secret"] == secret


def test_no_secret_lives_in_the_templates(rendered: tuple[Settings, Path]) -> None:
    settings, _ = rendered
    secrets = [ensure_secret(settings, "ami_secret"), ensure_secret(settings, "softphone_password")]
    for folder in (rt.CONFIG_TEMPLATES, rt.DIALPLANS):
        for path in folder.iterdir():
            if path.is_file():
                text = path.read_text(errors="replace")
                assert not any(s in text for s in secrets), path
    for tpl in ("manager.conf", "pjsip.conf"):
        text = (rt.CONFIG_TEMPLATES / tpl).read_text()
        assert not re.search(r"(?m)^(secret|password)\s*=\s*[^{\s]", text), tpl


def test_pjsip_trunk_softphone_and_no_anonymous(rendered: tuple[Settings, Path]) -> None:
    settings, etc = rendered
    pjsip = _sections((etc / "pjsip.conf").read_text())
    assert "anonymous" not in pjsip
    transport = pjsip["transport-udp"][0]
    assert (transport["protocol"], transport["bind"]) == ("udp", "127.0.0.1:15060")
    by_type = {(name, s.get("type")): s for name, group in pjsip.items() for s in group}
    trunk = by_type[("carrier", "endpoint")]
    assert trunk["trust_id_inbound"] == "yes"
    # The trunk is trusted, so only its address may identify it (never a From user name).
    assert trunk["identify_by"] == "ip"
    assert trunk["dtmf_mode"] == "rfc4733"
    assert trunk["context"] == "renraku-inbound"
    assert by_type[("carrier", "identify")]["match"] == "127.0.0.9"
    assert by_type[("carrier", "aor")]["contact"] == "sip:127.0.0.9:15070"
    # No provider account configured: IP matching only, no registration or auth.
    assert ("carrier-registration", "registration") not in by_type
    assert "outbound_auth" not in trunk
    phone = by_type[("softphone", "endpoint")]
    assert phone["context"] == "renraku-softphone" and phone["auth"] == "softphone-auth"
    assert phone["identify_by"] == "username"
    auth = by_type[("softphone-auth", "auth")]
    assert auth["password"] == ensure_secret(settings, "softphone_password")
    assert len(auth["password"]) >= 24
    # Every endpoint either is matched by IP (the trunk) or must authenticate.
    for (name, kind), section in by_type.items():
        if kind == "endpoint":
            assert name == "carrier" or section.get("auth"), name


def test_trunk_registration_when_the_provider_wants_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rt, "_modules_dir", lambda _root: MODULES)
    settings = _settings(
        tmp_path, trunk_peer="127.0.0.9:5080", trunk_username="school1", trunk_password="pw-1"
    )
    etc = rt.ivr_instance(settings, render_only=True).etc
    pjsip = _sections((etc / "pjsip.conf").read_text())
    by_type = {(name, s.get("type")): s for name, group in pjsip.items() for s in group}
    assert by_type[("carrier", "endpoint")]["outbound_auth"] == "carrier-auth"
    auth = by_type[("carrier-auth", "auth")]
    assert (auth["username"], auth["password"]) == ("school1", "pw-1")
    reg = by_type[("carrier-registration", "registration")]
    assert reg["server_uri"] == "sip:127.0.0.9:5080"
    assert reg["client_uri"] == "sip:school1@127.0.0.9"


def test_rtp_and_dialplan_globals_follow_the_settings(rendered: tuple[Settings, Path]) -> None:
    _, etc = rendered
    rtp = _sections((etc / "rtp.conf").read_text())["general"][0]
    assert (rtp["rtpstart"], rtp["rtpend"]) == ("31000", "31099")
    extensions = (etc / "extensions.conf").read_text()
    assert "FASTAGI_PEERS = agi://127.0.0.1:14573" in extensions
    assert re.search(r"(?m)^#include\s+dialplans/\*\.conf\s*$", extensions)


def test_each_node_starts_at_its_own_app_node_and_fails_over_to_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rt, "_modules_dir", lambda _root: MODULES)
    settings = _settings(tmp_path, fastagi_peers="10.0.0.1:4573,10.0.0.2:4573,10.0.0.3:4573")
    a, b, c = (f"agi://10.0.0.{i}:4573" for i in (1, 2, 3))
    # node i starts at peer i mod M (M = 3 here); a name without a number keeps the list
    wanted = {"ivr1": [a, b, c], "ivr2": [b, c, a], "ivr3": [c, a, b], "ivr4": [a, b, c],
              "ivr": [a, b, c]}
    for node, order in wanted.items():
        assert settings.fastagi_urls_for(node) == order
        extensions = (rt.ivr_instance(settings, name=node, render_only=True).etc
                      / "extensions.conf").read_text()
        assert f"FASTAGI_PEERS = {'&'.join(order)}" in extensions, node


def test_dialplans_route_every_line_to_its_fastagi_script() -> None:
    text = "\n".join(p.read_text() for p in sorted(rt.DIALPLANS.glob("*.conf")))
    contexts = set(re.findall(r"(?m)^\[([^\]]+)\]", text))
    assert {"renraku-inbound", "renraku-absence", "renraku-admin-record",
            "renraku-broadcast", "renraku-softphone"} <= contexts
    for script in ("absence", "admin-record", "broadcast", "followup"):
        assert f"Gosub(renraku-fastagi,s,1({script}" in text, script
    assert "AGI(${peer}/${ARG1})" in text
    # Every Goto and Gosub lands in a context that exists.
    for target in re.findall(r"Go(?:to|sub)\(([\w-]+),", text):
        assert target in contexts, target
    broadcast = (rt.DIALPLANS / "broadcast.conf").read_text()
    assert "AMD()" in broadcast and "CHANNEL(language)" in broadcast
    assert broadcast.index("AMD()") < broadcast.index("1(broadcast))")


def test_debian_mirror_comes_from_this_machines_apt() -> None:
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    text = "\n".join(p.read_text(errors="replace") for p in sources if p.is_file())
    if "debian" not in text:
        with pytest.raises(rt.AsteriskError):
            rt.debian_mirror()
        return
    mirror = rt.debian_mirror()
    assert mirror in text and "security" not in mirror


def test_control_socket_path_always_fits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Unix socket path holds 107 bytes; deep data folders get a short run folder."""
    short = Path("/var/renraku/asterisk/ivr")
    assert rt.run_dir(short) == short / "run"
    deep = tmp_path / ("d" * 80) / "asterisk" / "carrier"
    moved = rt.run_dir(deep)
    assert moved.parent == Path("/tmp") and len(str(moved / "asterisk.ctl")) < 100
    assert rt.run_dir(deep) == moved and rt.run_dir(deep.with_name("ivr")) != moved
    monkeypatch.setattr(rt, "_modules_dir", lambda _root: MODULES)
    settings = _settings(tmp_path / ("d" * 80))
    etc = rt.ivr_instance(settings, render_only=True).etc
    dirs = _sections((etc / "asterisk.conf").read_text())["directories"][0]
    assert len(dirs["astrundir"] + "/asterisk.ctl") < 100


def test_ami_logins_only_from_the_allow_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rt, "_modules_dir", lambda _root: MODULES)
    settings = _settings(tmp_path).replace(ami_permit="127.0.0.1, 192.0.2.0/24")
    etc = rt.ivr_instance(settings, render_only=True).etc
    text = (etc / "manager.conf").read_text()
    assert re.findall(r"(?m)^permit = (\S+)$", text) == ["127.0.0.1/32", "192.0.2.0/24"]
    assert re.findall(r"(?m)^deny = (\S+)$", text) == ["0.0.0.0/0.0.0.0", "::/0"]
    with pytest.raises(ValueError, match="not an address"):
        rt.ivr_instance(settings.replace(ami_permit="everyone"), render_only=True)
