"""docker/: the compose file, the Dockerfile and the PostgreSQL init script.

Nothing here needs a Docker engine: the files are checked against what they must agree with,
namely the roster (one city service per code), the real ``fedsync`` argument parser (every
command the containers run), the settings classes (every ``FEDSYNC_*`` variable), the
repository (every path the Dockerfile copies) and ``pyproject.toml`` (the entry point).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import shlex
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import make_url

from city_node.settings import CitySettings
from province_hub.settings import HubSettings
from sync.cli import build_parser
from sync.config import ConfigError, env_name, resolve
from sync.roster import load_roster

REPO = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO / "docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yml"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
DOCKERIGNORE = DOCKER_DIR / "Dockerfile.dockerignore"
PYPROJECT = REPO / "pyproject.toml"

HUB_FIELDS = frozenset(env_name(f.name) for f in dataclasses.fields(HubSettings))
CITY_FIELDS = frozenset(env_name(f.name) for f in dataclasses.fields(CitySettings))
ALWAYS_ALLOWED = frozenset({"FEDSYNC_CONFIG"})
SHELL_OPERATORS = frozenset({";", "&&", "||", "|", "&", "(", ")", ";;"})
LONG_RUNNING_RESTARTS = frozenset({"always", "unless-stopped"})


# --- reading the files ---------------------------------------------------------------------

# Compose interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $VAR.
_COMPOSE_VAR = re.compile(
    r"\$(?:(?P<dollar>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def _interpolate(value: Any, where: str) -> Any:
    """The value compose would see with no variable set: each must have a default."""
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["dollar"]:
            return "$"
        if match["op"] in (":-", "-"):
            return str(match["arg"])
        name = match["braced"] or match["bare"]
        pytest.fail(
            f"{where}: ${{{name}}} has no default, so `docker compose up` fails or runs "
            "with an empty value unless it is set; write ${NAME:-default}"
        )

    return _COMPOSE_VAR.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text("utf-8"))
    assert isinstance(document, dict) and isinstance(document.get("services"), dict), (
        f"{COMPOSE_FILE}: no services"
    )
    return dict(_interpolate(document, "compose"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int


def _dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comments and directives dropped."""
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker skips these, inside a continuation too
        if not parts:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        keyword, _, args = " ".join(parts).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        parts = []
    assert not parts, f"{DOCKERFILE}: ends inside a continued line"
    return instructions


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    instructions = _dockerfile_instructions(DOCKERFILE.read_text("utf-8"))
    assert instructions and instructions[0].keyword in ("FROM", "ARG"), f"{DOCKERFILE}: no FROM"
    return instructions


def _exec_form(instruction: Instruction) -> list[str]:
    """ENTRYPOINT/CMD must be JSON arrays: the shell form would put sh in front of fedsync
    and SIGTERM from `docker stop` would never reach it."""
    try:
        value = json.loads(instruction.args)
    except json.JSONDecodeError:
        value = None
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), (
        f"{DOCKERFILE}:{instruction.line}: {instruction.keyword} {instruction.args} is not the "
        'exec form (a JSON array such as ["fedsync"])'
    )
    return list(value)


def _last(instructions: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in instructions if i.keyword == keyword]
    assert found, f"{DOCKERFILE}: no {keyword}"
    return found[-1]


@pytest.fixture(scope="module")
def image_entrypoint(dockerfile: list[Instruction]) -> list[str]:
    return _exec_form(_last(dockerfile, "ENTRYPOINT"))


@pytest.fixture(scope="module")
def image_cmd(dockerfile: list[Instruction]) -> list[str]:
    return _exec_form(_last(dockerfile, "CMD"))


def _dockerfile_env(instructions: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in instructions:
        if instruction.keyword != "ENV":
            continue
        words = shlex.split(instruction.args)
        if words and "=" not in words[0]:  # legacy form: ENV NAME value with spaces
            env[words[0]] = " ".join(words[1:])
            continue
        for word in words:
            name, sep, value = word.partition("=")
            assert sep, f"{DOCKERFILE}:{instruction.line}: cannot read ENV {instruction.args}"
            env[name] = value
    return env


@pytest.fixture(scope="module")
def image_env(dockerfile: list[Instruction]) -> dict[str, str]:
    return _dockerfile_env(dockerfile)


def _copy_sources(instruction: Instruction) -> list[str] | None:
    """The build-context paths one COPY/ADD reads (None for COPY --from another stage)."""
    if instruction.args.startswith("["):
        words = json.loads(instruction.args)
    else:
        words = shlex.split(instruction.args)
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return None
    paths = [w for w in words if not w.startswith("--")]
    assert len(paths) >= 2, f"{DOCKERFILE}:{instruction.line}: COPY needs sources and a target"
    return paths[:-1]


@pytest.fixture(scope="module")
def copied(dockerfile: list[Instruction]) -> list[tuple[Instruction, list[str]]]:
    result = []
    for instruction in dockerfile:
        if instruction.keyword in ("COPY", "ADD"):
            sources = _copy_sources(instruction)
            if sources is not None:
                result.append((instruction, sources))
    assert result, f"{DOCKERFILE}: copies nothing from the build context"
    return result


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text("utf-8"))


# --- what the services run -----------------------------------------------------------------


def _words(value: Any) -> list[str]:
    """A compose command/entrypoint, given as a list or as a string compose splits."""
    if value is None:
        return []
    if isinstance(value, str):
        return shlex.split(value)
    return [str(v) for v in value]


def _commands_in_script(script: str, program: str) -> list[list[str]]:
    """Each ``program ...`` simple command in a shell script, up to the next operator."""
    found: list[list[str]] = []
    for line in script.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        current: list[str] | None = None
        for token in lexer:
            if token in SHELL_OPERATORS:
                current = None
            elif current is not None:
                current.append(token)
            elif token == program:
                current = [token]
                found.append(current)
    return found


def _is_shell(entrypoint: list[str]) -> bool:
    return (
        len(entrypoint) >= 2
        and Path(entrypoint[0]).name in ("sh", "bash")
        and (entrypoint[1] == "-c")
    )


def _fedsync_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services that run the image built from docker/Dockerfile."""
    built = {s.get("image") for s in services.values() if s.get("build")}
    return {
        name: svc for name, svc in services.items() if svc.get("build") or svc.get("image") in built
    }


def _service_argvs(
    name: str, svc: dict[str, Any], image_entrypoint: list[str], image_cmd: list[str]
) -> list[list[str]]:
    """The full command lines (starting with the program) a fedsync-image service runs."""
    if "entrypoint" not in svc:
        command = _words(svc["command"]) if "command" in svc else image_cmd
        return [image_entrypoint + command]
    entrypoint = _words(svc["entrypoint"])
    command = _words(svc.get("command"))  # an entrypoint override drops the image's CMD
    if _is_shell(entrypoint):
        script = " ".join(entrypoint[2:3] or command[:1])
        found = _commands_in_script(script, image_entrypoint[0])
        assert found, f"service {name}: its sh -c script runs no `{image_entrypoint[0]} ...`"
        return found
    return [entrypoint + command]


def _parse(argv: list[str], where: str) -> Any:
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(
            f"{where}: `{shlex.join(['fedsync', *argv])}` is refused by the fedsync CLI parser "
            f"(exit {exc.code}; its message is in the captured stderr)"
        )


@dataclasses.dataclass(frozen=True)
class Run:
    service: str
    argv: list[str]
    args: Any

    @property
    def command(self) -> str:
        return str(self.args._command)

    @property
    def sub(self) -> str | None:
        return getattr(self.args, "_sub", None)

    @property
    def runs_node(self) -> bool:
        """A long-running hub or city node (not a one-off subcommand)."""
        return self.command in ("hub", "city") and self.sub in (None, "run")


def _environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.partition("=") for item in env)
        return {k: v for k, _, v in pairs}
    return {
        str(k): "" if v is None else str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in env.items()
    }


@pytest.fixture(scope="module")
def runs(
    services: dict[str, dict[str, Any]], image_entrypoint: list[str], image_cmd: list[str]
) -> list[Run]:
    program = image_entrypoint[0]
    result = []
    for name, svc in _fedsync_services(services).items():
        for argv in _service_argvs(name, svc, image_entrypoint, image_cmd):
            assert argv[0] == program, f"service {name} runs {shlex.join(argv)}, not {program}"
            result.append(Run(name, argv, _parse(argv[1:], f"service {name}")))
    return result


def _settings(run: Run, svc: dict[str, Any], image_env: dict[str, str]) -> Any:
    """The settings the node in ``run`` would start with (flags > environment > defaults)."""
    cls: type = HubSettings if run.command == "hub" else CitySettings
    flags = {k: v for k, v in vars(run.args).items() if not k.startswith("_")}
    environ = {**image_env, **_environment(svc)}
    try:
        return resolve(cls, flags=flags, section=run.command, environ=environ)
    except ConfigError as exc:
        pytest.fail(f"service {run.service}: `{shlex.join(run.argv)}` would not start: {exc}")


@pytest.fixture(scope="module")
def nodes(
    runs: list[Run], services: dict[str, dict[str, Any]], image_env: dict[str, str]
) -> dict[str, tuple[Run, Any]]:
    """Service name -> (its run, its settings) for every service that uses node settings."""
    return {
        run.service: (run, _settings(run, services[run.service], image_env))
        for run in runs
        if run.command in ("hub", "city")
    }


def _hub_service(services: dict[str, dict[str, Any]], nodes: dict[str, Any]) -> str:
    hubs = [
        name
        for name, (run, _) in nodes.items()
        if run.command == "hub" and run.runs_node and not services[name].get("profiles")
    ]
    assert len(hubs) == 1, f"expected exactly one service running the hub, found {hubs}"
    return hubs[0]


def _city_services(nodes: dict[str, tuple[Run, Any]]) -> dict[str, Any]:
    return {
        name: settings
        for name, (run, settings) in nodes.items()
        if run.command == "city" and run.runs_node
    }


def _pki_inits(runs: list[Run]) -> list[Run]:
    inits = [run for run in runs if run.command == "pki" and run.sub == "init"]
    assert len(inits) == 1, f"expected one `fedsync pki init`, found {[r.service for r in inits]}"
    return inits


@dataclasses.dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool


def _mounts(svc: dict[str, Any]) -> list[Mount]:
    result = []
    for volume in svc.get("volumes") or []:
        if isinstance(volume, dict):
            result.append(
                Mount(
                    str(volume.get("source", "")),
                    str(volume["target"]),
                    bool(volume.get("read_only")),
                )
            )
            continue
        parts = str(volume).split(":")
        if len(parts) == 1:
            result.append(Mount("", parts[0], False))
        else:
            options = parts[2].split(",") if len(parts) > 2 else []
            result.append(Mount(parts[0], parts[1], "ro" in options))
    return result


def _depends_on(svc: dict[str, Any]) -> dict[str, str]:
    deps = svc.get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {k: (v or {}).get("condition", "service_started") for k, v in deps.items()}


def _postgres_service(services: dict[str, dict[str, Any]]) -> str:
    names = [n for n, s in services.items() if str(s.get("image", "")).startswith("postgres")]
    assert len(names) == 1, f"expected one PostgreSQL service, found {names}"
    return names[0]


def _created_databases(services: dict[str, dict[str, Any]]) -> set[str]:
    """Databases the postgres image's init scripts create (from the mounted directory)."""
    postgres = services[_postgres_service(services)]
    init_dirs = [
        (COMPOSE_FILE.parent / m.source).resolve()
        for m in _mounts(postgres)
        if m.target.rstrip("/") == "/docker-entrypoint-initdb.d" and m.source.startswith(".")
    ]
    assert init_dirs, "the postgres service mounts no init-script directory"
    created: set[str] = set()
    for init_dir in init_dirs:
        assert init_dir.is_dir(), f"postgres init directory {init_dir} does not exist"
        for script in sorted(init_dir.iterdir()):
            text = re.sub(r"--[^\n]*", "", script.read_text("utf-8"))
            created.update(
                m.lower() for m in re.findall(r"CREATE\s+DATABASE\s+\"?(\w+)\"?", text, re.I)
            )
    return created


def _port(address: str, where: str) -> int:
    host, sep, port = address.rpartition(":")
    assert sep and host and port.isdigit(), f"{where}: {address!r} is not host:port"
    return int(port)


# --- the tests ------------------------------------------------------------------------------


def test_every_fedsync_command_parses_with_the_real_cli(
    runs: list[Run], image_entrypoint: list[str], image_cmd: list[str]
) -> None:
    # Service commands, commands inside `sh -c` scripts (the `runs` fixture parsed each one)
    # and the image's own default: ENTRYPOINT + CMD.
    _parse(image_cmd, f"{DOCKERFILE.name} ENTRYPOINT {image_entrypoint} + CMD {image_cmd}")
    kinds = Counter((run.command, run.sub) for run in runs)
    assert kinds[("pki", "init")] == 1, "no service runs `fedsync pki init`"
    assert kinds[("hub", None)] + kinds[("hub", "run")] >= 1, "no service runs the hub"
    assert kinds[("city", None)] + kinds[("city", "run")] >= 1, "no service runs a city"


def _host_path(svc: dict[str, Any], container_path: Path, where: str) -> Path:
    """The file on the Docker host that a bind mount shows at ``container_path``."""
    for mount in _mounts(svc):
        target = Path(mount.target)
        if mount.source.startswith((".", "/")) and container_path.is_relative_to(target):
            return (COMPOSE_FILE.parent / mount.source).resolve() / container_path.relative_to(
                target
            )
    pytest.fail(f"{where}: {container_path} is not inside a bind mount of this compose file")


def _roster_codes(
    services: dict[str, dict[str, Any]], nodes: dict[str, tuple[Run, Any]], runs: list[Run]
) -> list[str]:
    """The roster the hub serves (its ``roster`` setting; default: the packaged Gansu one),
    which must be the one `fedsync pki init` certifies."""
    hub = _hub_service(services, nodes)
    init = _pki_inits(runs)[0]
    paths = [
        None if path is None else _host_path(services[service], Path(path), f"service {service}")
        for service, path in ((hub, nodes[hub][1].roster), (init.service, init.args.roster))
    ]
    assert paths[0] == paths[1], f"the hub serves roster {paths[0]}, pki init certifies {paths[1]}"
    return [city.code for city in load_roster(paths[0])]


def test_each_roster_city_has_exactly_one_service(
    services: dict[str, dict[str, Any]], nodes: dict[str, tuple[Run, Any]], runs: list[Run]
) -> None:
    roster = _roster_codes(services, nodes, runs)
    by_code = Counter(settings.code for settings in _city_services(nodes).values())
    missing = [code for code in roster if by_code[code] == 0]
    doubled = sorted(code for code, n in by_code.items() if n > 1)
    unknown = sorted(set(by_code) - set(roster))
    assert not missing, f"roster cities without a service: {missing}"
    assert not doubled, f"cities run by more than one service: {doubled}"
    assert not unknown, f"city services whose code is not on the roster (hub refuses): {unknown}"


def test_city_services_reach_the_hub_under_a_certified_name(
    services: dict[str, dict[str, Any]], nodes: dict[str, tuple[Run, Any]], runs: list[Run]
) -> None:
    hub = _hub_service(services, nodes)
    hub_port = _port(nodes[hub][1].listen, f"service {hub} listen")
    certified = set(_pki_inits(runs)[0].args.hub_host or ())
    published = {
        str(p).split("/")[0].split(":")[-1] if not isinstance(p, dict) else str(p["target"])
        for p in services[hub].get("ports") or []
    }
    assert str(hub_port) in published, f"hub listens on {hub_port} but publishes {published}"
    cities = _city_services(nodes)
    assert cities
    for name, settings in cities.items():
        host = settings.hub.rpartition(":")[0]
        assert host == hub, f"service {name}: hub address {settings.hub!r} is not service {hub}"
        assert _port(settings.hub, f"service {name} hub") == hub_port, (
            f"service {name}: hub address {settings.hub!r}, but the hub listens on {hub_port}"
        )
        server_name = settings.hub_server_name or host
        assert server_name in certified, (
            f"service {name} checks the hub certificate for {server_name!r}, but "
            f"`fedsync pki init` certifies only {sorted(certified)}"
        )


def _init_sql(services: dict[str, dict[str, Any]]) -> str:
    """The postgres image's init scripts (SQL, comments removed), in the order it runs them."""
    postgres = services[_postgres_service(services)]
    text = []
    for m in _mounts(postgres):
        if m.target.rstrip("/") == "/docker-entrypoint-initdb.d" and m.source.startswith("."):
            for script in sorted((COMPOSE_FILE.parent / m.source).resolve().iterdir()):
                text.append(re.sub(r"--[^\n]*", "", script.read_text("utf-8")))
    return "\n".join(text)


def _roles(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Role -> the postgres-service variable its password is read from (``\\getenv``)."""
    sql = _init_sql(services)
    roles = {}
    for var_name, var, role, used in re.findall(
        r"\\getenv\s+(\w+)\s+(\w+)\s*\n\s*CREATE\s+ROLE\s+\"?(\w+)\"?\s+LOGIN\s+PASSWORD\s+:'(\w+)'",
        sql,
        re.I,
    ):
        assert used == var_name, f"role {role}: password read into :{var_name}, used :{used}"
        roles[role.lower()] = var
    return roles


def test_each_node_has_its_own_database_role_owning_only_its_database(
    services: dict[str, dict[str, Any]], nodes: dict[str, tuple[Run, Any]]
) -> None:
    postgres = _postgres_service(services)
    pg_env = _environment(services[postgres])
    superuser = pg_env.get("POSTGRES_USER", "postgres")
    sql = _init_sql(services)
    roles = _roles(services)
    owners: dict[str, list[str]] = {}
    users: dict[str, list[str]] = {}
    for name, (run, settings) in nodes.items():
        url = make_url(settings.database_url)
        assert url.get_backend_name() == "postgresql", f"service {name}: {url!r} is not PostgreSQL"
        assert url.host == postgres, f"service {name}: database host {url.host!r} != {postgres!r}"
        # Not the superuser: a node broken into must not reach the other nodes' databases.
        assert url.username != superuser, f"service {name} connects as the superuser"
        assert url.password != pg_env.get("POSTGRES_PASSWORD"), (
            f"service {name} knows the superuser's password"
        )
        role = str(url.username)
        assert role in roles, f"service {name}: role {role!r} is not created by the init script"
        assert pg_env.get(roles[role]) == url.password, (
            f"service {name}: the password of role {role} differs from what the init script "
            f"sets (the postgres service's {roles[role]})"
        )
        database = str(url.database)
        assert re.search(rf"CREATE\s+DATABASE\s+{database}\s+OWNER\s+{role}\s*;", sql, re.I), (
            f"service {name}: database {database} is not created owned by {role}"
        )
        assert re.search(
            rf"REVOKE\s+ALL\s+ON\s+DATABASE\s+{database}\s+FROM\s+PUBLIC", sql, re.I
        ), f"database {database}: other roles may still connect to it (REVOKE ... FROM PUBLIC)"
        if run.runs_node:
            owners.setdefault(database, []).append(name)
            users.setdefault(role, []).append(name)
    shared = {db: names for db, names in owners.items() if len(names) > 1}
    assert not shared, f"nodes sharing one database: {shared}"
    shared_roles = {r: names for r, names in users.items() if len(names) > 1}
    assert not shared_roles, f"nodes sharing one database role: {shared_roles}"
    # Each role owns exactly one database.
    owned = Counter(m.lower() for m in re.findall(r"OWNER\s+(\w+)", sql, re.I))
    assert all(n == 1 for n in owned.values()), f"roles owning several databases: {owned}"


def test_every_database_named_by_a_service_is_created_by_the_init_script(
    services: dict[str, dict[str, Any]], nodes: dict[str, tuple[Run, Any]]
) -> None:
    created = _created_databases(services)
    for name, (_, settings) in nodes.items():
        database = make_url(settings.database_url).database
        assert database in created, (
            f"service {name} uses database {database!r}, which no postgres init script creates "
            f"(created: {sorted(created)})"
        )


def test_fedsync_environment_variables_name_real_settings(
    services: dict[str, dict[str, Any]], runs: list[Run], image_env: dict[str, str]
) -> None:
    # Unknown names are ignored by the settings loader, so a typo would pass silently.
    known = HUB_FIELDS | CITY_FIELDS | ALWAYS_ALLOWED
    for name in image_env:
        if name.startswith("FEDSYNC_"):
            assert name in known, f"{DOCKERFILE.name}: ENV {name} is no fedsync setting"
    roles: dict[str, set[str]] = {run.service: set() for run in runs}
    for run in runs:
        roles[run.service].add(run.command)
    for service, svc in services.items():
        allowed = set(ALWAYS_ALLOWED)
        for role in roles.get(service, {"hub", "city"}):
            allowed |= {"hub": HUB_FIELDS, "city": CITY_FIELDS}.get(role, set())
        for name in _environment(svc):
            if name.startswith("FEDSYNC_"):
                assert name in allowed, (
                    f"service {service}: {name} is not a setting of what it runs "
                    f"({', '.join(sorted(roles.get(service, ())))})"
                )


def test_dockerfile_copies_only_existing_paths_and_every_package(
    services: dict[str, dict[str, Any]],
    copied: list[tuple[Instruction, list[str]]],
    pyproject: dict[str, Any],
) -> None:
    for name, svc in _fedsync_services(services).items():
        build = svc.get("build")
        if build:
            context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
            assert context == REPO, f"service {name}: build context {context} is not the repo"
            assert (context / build["dockerfile"]).resolve() == DOCKERFILE.resolve()
    copied_tops: set[str] = set()
    for instruction, sources in copied:
        matched = False
        for source in sources:
            path = (REPO / source).resolve()
            assert path.is_relative_to(REPO), f"{DOCKERFILE.name}:{instruction.line}: {source}"
            if any(c in source for c in "*?["):
                hits = list(REPO.glob(source.rstrip("/")))
                matched |= bool(hits)
            else:
                assert path.exists(), (
                    f"{DOCKERFILE.name}:{instruction.line}: COPY {source} - no such path in the "
                    "repository (the build context)"
                )
                matched = True
            copied_tops.add(Path(source.rstrip("/")).parts[0] if source.strip("./") else ".")
        assert matched, f"{DOCKERFILE.name}:{instruction.line}: no source exists: {sources}"
    # `pip install .` silently leaves out a package whose directory was not copied.
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        top = pattern.rstrip("*").rstrip(".")
        assert top in copied_tops or "." in copied_tops, (
            f"{DOCKERFILE.name} does not copy {top}/, which pyproject.toml packages"
        )
    assert "pyproject.toml" in copied_tops or "." in copied_tops


def _ignore_regex(pattern: str) -> re.Pattern[str]:
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            regex += ".*"
            i += 2
        else:
            c = pattern[i]
            regex += "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c)
            i += 1
    return re.compile(regex)


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: the last matching line wins; a match on a parent counts."""
    parents = [str(Path(*Path(path).parts[:n])) for n in range(1, len(Path(path).parts) + 1)]
    ignored = False
    for line in patterns:
        negated = line.startswith("!")
        regex = _ignore_regex(line.lstrip("!").strip("/"))
        if any(regex.fullmatch(p) for p in parents):
            ignored = not negated
    return ignored


def test_dockerignore_sends_what_the_dockerfile_copies(
    copied: list[tuple[Instruction, list[str]]],
) -> None:
    if not DOCKERIGNORE.exists():
        pytest.skip(f"no {DOCKERIGNORE.name}: the whole repository is the build context")
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text("utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    for instruction, sources in copied:
        for source in sources:
            literal = re.split(r"[*?\[]", source)[0].rstrip("/") or "."
            assert not _ignored(literal, patterns), (
                f"{DOCKERFILE.name}:{instruction.line}: COPY {source}, but {DOCKERIGNORE.name} "
                "keeps it out of the build context"
            )
    for heavy in (".venv", ".git", "sync/__pycache__"):
        assert _ignored(heavy, patterns), f"{DOCKERIGNORE.name} sends {heavy} to the builder"


def _entry_point(pyproject: dict[str, Any], name: str) -> tuple[str, Any]:
    target = str(pyproject["project"]["scripts"][name])
    module, _, attr = target.partition(":")
    return target, getattr(importlib.import_module(module), attr)


def test_entrypoint_is_the_console_script(
    image_entrypoint: list[str], pyproject: dict[str, Any]
) -> None:
    scripts = pyproject["project"].get("scripts", {})
    assert len(image_entrypoint) == 1 and image_entrypoint[0] in scripts, (
        f"ENTRYPOINT {image_entrypoint} is none of pyproject's [project.scripts]: {sorted(scripts)}"
    )
    target, function = _entry_point(pyproject, image_entrypoint[0])
    import sync.cli

    assert function is sync.cli.main, f"{image_entrypoint[0]} = {target!r} is not sync.cli:main"


def test_image_is_unprivileged_and_matches_python_and_port(
    dockerfile: list[Instruction],
    pyproject: dict[str, Any],
    services: dict[str, dict[str, Any]],
    nodes: dict[str, tuple[Run, Any]],
) -> None:
    base = shlex.split(dockerfile[0].args)[-1]
    match = re.fullmatch(r"python:(\d+)\.(\d+)(?:[.-].*)?", base)
    assert match, f"{DOCKERFILE.name}: base image {base!r} is not an official python:X.Y image"
    minimum = re.fullmatch(r">=\s*(\d+)\.(\d+)", pyproject["project"]["requires-python"])
    assert minimum and tuple(map(int, match.groups())) >= tuple(map(int, minimum.groups())), (
        f"{base} does not satisfy requires-python {pyproject['project']['requires-python']}"
    )
    user = _last(dockerfile, "USER").args.split(":")[0]
    assert user not in ("root", "0"), f"{DOCKERFILE.name}: the image runs as {user}"
    assert dockerfile.index(_last(dockerfile, "USER")) > max(
        i for i, ins in enumerate(dockerfile) if ins.keyword == "RUN"
    ), "a RUN after USER would need root; keep USER after the last RUN"
    exposed = {
        p.split("/")[0] for ins in dockerfile if ins.keyword == "EXPOSE" for p in ins.args.split()
    }
    hub_port = _port(nodes[_hub_service(services, nodes)][1].listen, "hub listen")
    assert str(hub_port) in exposed, f"EXPOSE {sorted(exposed)} lacks the hub port {hub_port}"


def test_pki_is_made_once_before_any_node_and_read_only_for_nodes(
    services: dict[str, dict[str, Any]], runs: list[Run], nodes: dict[str, tuple[Run, Any]]
) -> None:
    init = _pki_inits(runs)[0]
    pki = services[init.service]
    assert not init.args.overwrite, "pki init must never --overwrite an existing CA"
    script = " ".join(_words(pki.get("command")))
    guarded = {
        Path(a or b)
        for a, b in re.findall(r"\[\s+-[ef]\s+(\S+)\s+\]|\btest\s+-[ef]\s+(\S+)", script)
    }
    assert init.args.dir / "ca.key" in guarded, (
        f"service {init.service}: `fedsync pki init` must run only when {init.args.dir}/ca.key "
        "is missing (it refuses an existing CA, and the service would then fail every start)"
    )
    assert str(pki.get("restart", "no")) == "no", f"service {init.service} is one-shot"
    writable = {
        m.source for m in _mounts(pki) if m.target == str(init.args.dir) and not m.read_only
    }
    assert len(writable) == 1, f"service {init.service}: no writable volume at {init.args.dir}"
    postgres = _postgres_service(services)
    ca_volume = next(iter(writable))
    # Where the pki service exports each node's own files: the volume mounted at --to.
    exports = [run for run in runs if run.command == "pki" and run.sub == "export"]
    exported: dict[str, str] = {}
    for run in exports:
        assert run.service == init.service, f"service {run.service} exports node files"
        assert run.args.dir == init.args.dir, f"pki export reads {run.args.dir}, not the CA's"
        volume = [m for m in _mounts(pki) if m.target == str(run.args.to) and not m.read_only]
        assert len(volume) == 1, f"pki export --to {run.args.to} is no writable volume"
        identity = f"city:{run.args.city}" if run.args.city else "hub"
        assert volume[0].source not in exported, f"volume {volume[0].source} exported twice"
        exported[volume[0].source] = identity
    for name, (run, settings) in nodes.items():
        if not run.runs_node:
            continue
        deps = _depends_on(services[name])
        assert deps.get(init.service) == "service_completed_successfully", (
            f"service {name} may start before the certificates exist"
        )
        assert deps.get(postgres) == "service_healthy", f"service {name} may start before the DB"
        # Only its own key and certificate: never the CA's volume (the CA key, every key).
        sources = {m.source for m in _mounts(services[name])}
        assert ca_volume not in sources, f"service {name} mounts the CA volume {ca_volume}"
        mounts = [m for m in _mounts(services[name]) if m.target == str(settings.pki_dir)]
        assert len(mounts) == 1, f"service {name}: no volume at pki_dir {settings.pki_dir}"
        assert mounts[0].read_only, f"service {name}: mount {settings.pki_dir} read-only"
        own = "hub" if run.command == "hub" else f"city:{settings.code}"
        assert exported.get(mounts[0].source) == own, (
            f"service {name} ({own}) mounts {mounts[0].source}, which pki export fills with "
            f"{exported.get(mounts[0].source, 'nothing')}"
        )
    node_volumes = Counter(
        m.source
        for name, (run, settings) in nodes.items()
        if run.runs_node
        for m in _mounts(services[name])
        if m.target == str(settings.pki_dir)
    )
    assert all(n == 1 for n in node_volumes.values()), f"nodes sharing a PKI volume: {node_volumes}"


def test_long_running_services_restart_and_stop_gracefully(
    services: dict[str, dict[str, Any]],
    nodes: dict[str, tuple[Run, Any]],
    dockerfile: list[Instruction],
) -> None:
    image_signal = _last(dockerfile, "STOPSIGNAL").args
    assert image_signal == "SIGTERM", "the nodes stop cleanly on SIGTERM"
    postgres = _postgres_service(services)
    health = " ".join(_words((services[postgres].get("healthcheck") or {}).get("test")))
    assert "pg_isready" in health, "the postgres healthcheck should use pg_isready"
    long_running = [n for n, (run, _) in nodes.items() if run.runs_node] + [postgres]
    for name in long_running:
        svc = services[name]
        assert svc.get("restart") in LONG_RUNNING_RESTARTS, f"service {name}: no restart policy"
        assert svc.get("stop_grace_period"), f"service {name}: no stop_grace_period"
        if name != postgres:
            assert svc.get("stop_signal", image_signal) == "SIGTERM", f"service {name}"


def _published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """Container port -> (host address, host port) of a service's short-syntax ports."""
    out: dict[int, tuple[str, int]] = {}
    for spec in service.get("ports") or []:
        parts = str(spec).split(":")
        assert len(parts) == 3, f"publish with an address, host and container port: {spec!r}"
        out[int(parts[2])] = (parts[0], int(parts[1]))
    return out


def test_every_city_console_is_published_on_loopback_with_its_own_port_and_key(
    services: dict[str, dict[str, Any]], nodes: dict[str, tuple[Run, Any]]
) -> None:
    """A city center works its tickets in its console: each city service serves one, on the
    Docker host's loopback only (plain HTTP, as the hub's web), on a host port of its own,
    with its session key in a writable volume no other service mounts."""
    cities = _city_services(nodes)
    host_ports: Counter[int] = Counter()
    volumes: Counter[str] = Counter(
        str(v).split(":")[0] for s in services.values() for v in s.get("volumes") or []
    )
    for name, settings in cities.items():
        assert settings.http_port, f"{name}: no staff console (FEDSYNC_HTTP_PORT)"
        published = _published(services[name])
        assert settings.http_port in published, f"{name}: its console port is not published"
        address, host_port = published[settings.http_port]
        assert address == "127.0.0.1", f"{name}: a plain-HTTP console published on {address}"
        host_ports[host_port] += 1
        key_dir = str(Path(settings.secret_key_file).parent)
        mounts = [str(v).split(":") for v in services[name].get("volumes") or []]
        holding = [m for m in mounts if m[1] == key_dir]
        assert holding, f"{name}: its console key {settings.secret_key_file} is in no volume"
        assert holding[0][2:] != ["ro"], f"{name}: its key's volume is read-only"
        assert volumes[holding[0][0]] == 1, f"{name}: its key's volume is shared"
    doubled = sorted(p for p, n in host_ports.items() if n > 1)
    assert not doubled, f"host ports published by more than one city: {doubled}"
