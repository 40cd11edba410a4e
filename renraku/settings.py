"""One settings object: a TOML file plus ``RENRAKU_*`` environment overrides.

Precedence (last wins): built-in defaults, the TOML file (``RENRAKU_CONFIG`` or
``./renraku.toml`` when present), then ``RENRAKU_<FIELD>`` environment variables.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

SECRET_FIELDS = frozenset({"ami_secret", "smtp_password", "secret_key", "admin_pin_pepper"})
LANGUAGES = ("ja", "en", "zh", "es")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file in data_dir
    # PostgreSQL connections per process (SQLAlchemy's default of 5 + 10 queued the
    # morning peak's 200 calls); the same again may open for bursts. Mind the server's
    # max_connections (100 by default) across processes.
    database_pool_size: int = 20
    default_timezone: str = "Asia/Tokyo"
    default_region: str = "JP"
    # Web portal
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    public_url: str = ""  # empty: http://web_host:web_port
    secret_key: str = ""  # empty: generated once into data_dir/secret_key
    metrics_allow: str = "127.0.0.0/8,::1/128"  # who may read /metrics (comma separated)
    # A city: where the IVR nodes fetch this app node's sounds (prompts.media), e.g.
    # http://10.0.0.13:8080/sounds; empty: Asterisk reads the shared data folder.
    sounds_url: str = ""
    sounds_allow: str = "127.0.0.0/8,::1/128"  # the IVR nodes' addresses (GET /sounds/…)
    # Sessions end after this long without a request, and this long after signing in
    staff_idle_minutes: int = 30
    staff_session_hours: int = 12  # a school day
    guardian_idle_days: int = 14
    guardian_session_days: int = 30
    # FastAGI
    fastagi_host: str = "127.0.0.1"  # where this app node listens
    fastagi_port: int = 4573
    # Where Asterisk reaches FastAGI, "host:port" comma separated, first choice first: every
    # app node of a cluster. Empty: this node's fastagi_host:fastagi_port.
    fastagi_peers: str = ""
    fastagi_allowed: str = "127.0.0.1,::1"  # Asterisk's addresses: nobody else gets a call flow
    # Asterisk / AMI
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "renraku"
    ami_secret: str = ""  # empty: generated once into data_dir/ami_secret
    ami_permit: str = "127.0.0.0/8"  # who may log in to AMI (Renraku's hosts)
    # A city's IVR node: ARI on sip_host:ari_port, where the app nodes fetch the admin
    # line's recordings from this node (0: off; one machine shares the files).
    ari_port: int = 0
    asterisk_root: Path = Path.home() / ".cache" / "renraku" / "asterisk-root"
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    rtp_start: int = 10000
    rtp_end: int = 10999
    trunk_peer: str = "127.0.0.1:5070"  # host:port of the carrier (or its simulator)
    trunk_username: str = ""  # set to register to a provider instead of IP matching
    trunk_password: str = ""
    softphone_password: str = ""
    # The demo (`make run`): campaign calls ring the registered softphone, else a built-in
    # household that answers (dialplans/demo.conf), instead of going out to the carrier.
    demo_phones: bool = False
    # SIP ban (password guessing): this many failed authentications from one address within
    # sip_ban_window_s ban it for sip_ban_seconds. The trunk and Kamailio are never banned,
    # nor the addresses in sip_ban_allow (comma separated, CIDR blocks too).
    sip_ban_failures: int = 5
    sip_ban_window_s: int = 60
    sip_ban_seconds: int = 3600
    sip_ban_allow: str = ""
    # Kamailio, the cluster's SIP face to the carrier (`renraku kamailio`): where it listens,
    # the carrier it talks to and the IVR Asterisk nodes it spreads calls over (host:port,
    # comma separated). Each node's trunk_peer is then kamailio_listen.
    kamailio_listen: str = "127.0.0.1:5080"
    kamailio_carrier: str = "127.0.0.1:5070"
    kamailio_nodes: str = "127.0.0.1:5060"
    kamailio_probe_s: int = 2
    # Dialer. The channel cap is the trunk's: every app node's dialer counts against it.
    node_name: str = ""  # this app node's name in a cluster (its dialer's calls carry it)
    dialer_max_channels: int = 10
    dialer_originates_per_second: float = 5.0
    dialer_max_attempts: int = 3
    dialer_retry_delay_s: int = 300
    calling_window_start: str = "08:00"
    calling_window_end: str = "20:00"
    # SMTP
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = "renraku@localhost"
    smtp_starttls: bool = False
    # SMS: "outbox" keeps messages in the database; "http" posts to sms_gateway_url
    sms_backend: str = "outbox"
    sms_gateway_url: str = ""
    # TTS engine order per language, comma separated; offline engines always end the chain
    tts_ja: str = "gtts,openjtalk"
    tts_en: str = "gtts,espeak"
    tts_zh: str = "gtts,espeak"
    tts_es: str = "gtts,espeak"
    openjtalk_voice: str = ""  # empty: ~/.cache/renraku/voices/mei_normal.htsvoice
    # Testing only: the fake clock is honoured only when testing is on
    testing: bool = False
    fake_now: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "renraku.db"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.sqlite_path.resolve()}"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.web_host}:{self.web_port}").rstrip("/")

    @property
    def fastagi_urls(self) -> list[str]:
        """agi:// addresses of the app nodes, in the order Asterisk tries them."""
        peers = [p.strip() for p in self.fastagi_peers.split(",") if p.strip()]
        if not peers:
            # A wildcard bind address is no address to connect to.
            host = "127.0.0.1" if self.fastagi_host in ("0.0.0.0", "::", "") else self.fastagi_host
            peers = [f"{host}:{self.fastagi_port}"]
        return [f"agi://{p}" for p in peers]

    def fastagi_urls_for(self, node: str) -> list[str]:
        """The app nodes in the order IVR node ``node`` tries them: node i (its name's
        trailing number, from 1) starts at peer i mod M and fails over to all the others
        in turn, so the nodes' calls spread over the app nodes instead of all landing on
        the first. A node name without a number (a single IVR) keeps the listed order."""
        urls = self.fastagi_urls
        digits = re.search(r"(\d+)$", node)
        if digits is None:
            return urls
        first = (int(digits.group(1)) - 1) % len(urls)
        return urls[first:] + urls[:first]

    @property
    def sounds_dir(self) -> Path:
        return self.data_dir / "sounds"

    @property
    def voicemail_dir(self) -> Path:
        """Where Asterisk records the absence line's voicemail fallback (no app needed)."""
        return self.data_dir / "voicemail"

    def tts_chain(self, lang: str) -> list[str]:
        return [e.strip() for e in getattr(self, f"tts_{lang}").split(",") if e.strip()]

    def redacted(self) -> dict[str, Any]:
        """Settings as a dict with secrets masked, for logs and ``renraku config``."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "********"
            out[f.name] = str(value) if isinstance(value, Path) else value
        if "@" in str(out["database_url"]) and ":" in str(out["database_url"]).split("@")[0]:
            scheme, rest = str(out["database_url"]).split("://", 1)
            creds, host = rest.split("@", 1)
            out["database_url"] = f"{scheme}://{creds.split(':')[0]}:********@{host}"
        return out

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, raw: Any, current: Any) -> Any:
    if isinstance(current, bool):
        if isinstance(raw, bool):
            return raw
        return str(raw).strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(current, int):
        return int(raw)
    if isinstance(current, float):
        return float(raw)
    if isinstance(current, Path):
        return Path(str(raw)).expanduser()
    if isinstance(current, dict):
        return dict(raw)
    return str(raw)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    env = dict(os.environ if env is None else env)
    base = Settings()
    values: dict[str, Any] = {}
    path = config_file or env.get("RENRAKU_CONFIG")
    if path is None and Path("renraku.toml").exists():
        path = "renraku.toml"
    known = {f.name for f in fields(Settings)}
    if path:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        for key, raw in data.items():
            if key not in known:
                raise ValueError(f"unknown setting {key!r} in {path}")
            values[key] = _coerce(key, raw, getattr(base, key))
    for key in known - {"extra"}:
        env_key = f"RENRAKU_{key.upper()}"
        if env_key in env:
            values[key] = _coerce(key, env[env_key], getattr(base, key))
    return dataclasses.replace(base, **values)


def ensure_secret(settings: Settings, name: str) -> str:
    """Return a secret from settings, or one generated once and kept in the data folder."""
    value = getattr(settings, name)
    if value:
        return value
    import secrets

    path = settings.data_dir / name
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value
