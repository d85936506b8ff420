"""docker-compose.yaml cannot run here (no Docker engine): check it against what the package needs,
and have a compose CLI validate it (`config` needs no engine; scripts/bootstrap.sh installs one)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
# Host ports a local MariaDB/MySQL, Redis, PostgreSQL (and make cluster's broker Redis) hold.
LOCAL_PORTS = {3306, 5432, 6379, 6380}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yaml").read_text())


def pinned_airflow_version() -> str:
    match = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


def airflow_services(compose):
    return {name: svc for name, svc in compose["services"].items() if name.startswith("airflow-") and "build" in svc}


def defaults(text: str) -> str:
    """``text`` as compose reads it with no variables set: ``${VAR:-default}`` is the default."""
    text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)
    assert "${" not in text.replace("$${", ""), f"a variable without a default: {text}"
    return text


def named_volumes(svc) -> dict[str, str]:
    """Mount target -> named volume (bind mounts of host folders left out)."""
    mounts = [v.split(":") for v in svc.get("volumes", [])]
    return {target: source for source, target, *_ in mounts if not source.startswith((".", "/"))}


def init_script(compose) -> str:
    """The bash script airflow-init runs (entrypoint /bin/bash, command -c SCRIPT)."""
    init = compose["services"]["airflow-init"]
    assert init["entrypoint"] == "/bin/bash" and init["command"][0] == "-c"
    (script,) = init["command"][1:]
    return script


def test_celery_executor_with_a_broker_apart_from_the_crawl_queues(compose):
    services = compose["services"]
    for name, svc in airflow_services(compose).items():
        env = svc["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        broker_host = env["AIRFLOW__CELERY__BROKER_URL"].split("//")[1].split(":")[0]
        assert broker_host in services and broker_host != "crawl-redis", name
    assert services["airflow-worker"]["command"] == "celery worker"
    assert services["airflow-worker"]["healthcheck"]["test"]


def test_the_simulator_follows_the_airflow_connections(compose):
    simulator = compose["services"]["crawl-simulator"]
    env = simulator["environment"]
    redis = json.loads(airflow_services(compose)["airflow-scheduler"]["environment"]["AIRFLOW_CONN_CRAWL_REDIS"])
    mysql = json.loads(airflow_services(compose)["airflow-scheduler"]["environment"]["AIRFLOW_CONN_CRAWL_MYSQL"])
    assert env["CRAWLOPS_REDIS_URL"] == f"redis://{redis['host']}:{redis['port']}/{redis['extra']['db']}"
    assert env["CRAWLOPS_MYSQL_URL"].endswith(f"@{mysql['host']}:{mysql['port']}/{mysql['schema']}")
    assert simulator["entrypoint"] == ["python", "-m", "crawlops.harness.simulator"]
    assert simulator["image"] == airflow_services(compose)["airflow-scheduler"]["image"]
    assert "./include:/opt/airflow/include" in simulator["volumes"]


def test_the_simulator_builds_the_airflow_image(compose):
    """`image:` alone would make `up --build` pull a crawlops-airflow that no registry has."""
    simulator = compose["services"]["crawl-simulator"]
    scheduler = airflow_services(compose)["airflow-scheduler"]
    assert simulator["build"] == scheduler["build"]
    assert simulator["image"] == scheduler["image"]


def test_services_present(compose):
    assert {
        "airflow-db",
        "crawl-mysql",
        "crawl-redis",
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
        "celery-broker",
        "crawl-simulator",
    } <= set(compose["services"])


def test_image_is_the_pinned_airflow(compose):
    version = pinned_airflow_version()
    assert f"ARG AIRFLOW_VERSION={version}" in DOCKERFILE.read_text()
    for name, svc in airflow_services(compose).items():
        assert svc["build"]["args"]["AIRFLOW_VERSION"] == version, name
        assert svc["image"].endswith(":" + version), name


def test_dag_plugin_and_include_folders_are_mounted(compose):
    for name, svc in airflow_services(compose).items():
        binds = {v.split(":")[0]: v.split(":")[1] for v in svc["volumes"] if v.startswith("./")}
        assert binds == {
            "./dags": "/opt/airflow/dags",
            "./plugins": "/opt/airflow/plugins",
            "./include": "/opt/airflow/include",
        }, name
        for folder in binds:
            assert (ROOT / folder).is_dir()


def test_logs_and_reports_live_on_volumes_every_airflow_service_shares(compose):
    """Task logs and daily reports outlive containers and are the same whichever worker wrote them."""
    from crawlops.settings import Settings

    declared = set(compose["volumes"])
    for name, svc in airflow_services(compose).items():
        volumes = named_volumes(svc)
        assert volumes.get("/opt/airflow/logs") in declared, name
        reports_dir = svc["environment"]["CRAWLOPS__REPORT__REPORTS_DIR"]
        assert volumes.get(reports_dir) in declared, name
        # The package writes its reports where the variable says (crawlops.report.store).
        assert str(Settings.load(environ={"CRAWLOPS__REPORT__REPORTS_DIR": reports_dir}).report.directory()) == (
            reports_dir
        )
        assert named_volumes(svc)[reports_dir] == "crawl-reports", name
    # A new named volume takes the owner of the image's folder: the image creates it as airflow.
    assert re.search(r"^RUN mkdir -p .*/opt/airflow/reports", DOCKERFILE.read_text(), re.MULTILINE)


def test_both_dags_start_unpaused(compose):
    for name, svc in airflow_services(compose).items():
        assert str(svc["environment"]["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"]).lower() == "false", name


def test_connections_match_the_spec_and_the_services(compose):
    for name, svc in airflow_services(compose).items():
        env = svc["environment"]
        mysql = json.loads(env["AIRFLOW_CONN_CRAWL_MYSQL"])
        redis = json.loads(env["AIRFLOW_CONN_CRAWL_REDIS"])
        assert mysql["conn_type"] == "mysql" and mysql["host"] in compose["services"], name
        assert mysql["extra"]["charset"] == "utf8mb4"
        assert redis["conn_type"] == "redis" and redis["host"] in compose["services"], name
        assert isinstance(redis["extra"]["db"], int)
        mysql_env = compose["services"]["crawl-mysql"]["environment"]
        assert (mysql["login"], mysql["password"], mysql["schema"]) == (
            mysql_env["MYSQL_USER"],
            mysql_env["MYSQL_PASSWORD"],
            mysql_env["MYSQL_DATABASE"],
        )
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080/")


def test_data_services_have_health_checks_and_airflow_waits_for_them(compose):
    for name in ("airflow-db", "crawl-mysql", "crawl-redis", "celery-broker"):
        assert compose["services"][name]["healthcheck"]["test"], name
    for name, svc in airflow_services(compose).items():
        for dependency in ("airflow-db", "crawl-mysql", "crawl-redis", "celery-broker"):
            assert svc["depends_on"][dependency]["condition"] == "service_healthy", name
        if name != "airflow-init":
            assert svc["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully", name


def test_airflow_components_have_the_official_health_checks(compose):
    services = compose["services"]
    scheduler = services["airflow-scheduler"]
    assert scheduler["healthcheck"]["test"] == ["CMD", "curl", "--fail", "http://localhost:8974/health"]
    assert str(scheduler["environment"]["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"]).lower() == "true"
    for name, job in (("airflow-dag-processor", "DagProcessorJob"), ("airflow-triggerer", "TriggererJob")):
        # $$ is compose's escape: the container's shell expands its own $HOSTNAME.
        assert services[name]["healthcheck"]["test"] == [
            "CMD-SHELL",
            f'airflow jobs check --job-type {job} --hostname "$${{HOSTNAME}}"',
        ], name
    assert "/api/v2/" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert "inspect ping" in services["airflow-worker"]["healthcheck"]["test"][1]
    assert services["airflow-worker"]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"


def test_restart_policies(compose):
    for name, svc in compose["services"].items():
        if name == "airflow-init":
            assert svc["restart"] == "no"  # a one-shot step; the others wait for it to succeed
        else:
            assert svc.get("restart") in ("always", "unless-stopped"), name


def test_no_host_port_clashes_with_local_servers(compose):
    """A local MariaDB (3306) and Redis (6379) run on the development machine: the stack must come up beside them."""
    published = {}
    for name, svc in compose["services"].items():
        for port in svc.get("ports", []):
            *host, _container = defaults(str(port)).split(":")
            published[name] = int(host[-1])
            assert int(host[-1]) not in LOCAL_PORTS, f"{name} publishes {port}"
    assert set(published) == {"airflow-apiserver", "crawl-mysql", "crawl-redis", "prometheus", "alertmanager"}
    for name in ("crawl-mysql", "crawl-redis", "prometheus", "alertmanager"):
        (port,) = compose["services"][name]["ports"]
        assert re.fullmatch(r"127\.0\.0\.1:\$\{CRAWL(OPS)?_\w+_PORT:-\d+\}:\d+", port), port  # movable, local only
    assert published["airflow-apiserver"] == 8080


def test_crawl_redis_keeps_nothing_on_disk_like_production(compose):
    assert compose["services"]["crawl-redis"]["command"] == ["redis-server", "--save", "", "--appendonly", "no"]


def test_init_applies_the_schema_migrations_at_deploy(compose):
    command = init_script(compose)
    assert "airflow db migrate" in command
    assert "python -m crawlops.migrations" in command


def test_init_loads_the_starter_config_after_the_schema(compose):
    from crawlops.crawl_config import read_rows

    script = init_script(compose)
    assert script.lstrip().startswith("set -e")  # a failed step fails the init, and nothing starts
    match = re.search(r"python -m crawlops\.crawl_config load (\S+)", script)
    assert match and script.index("crawlops.migrations") < match.start()
    # The file and the loader reach the container through the include/ mount.
    in_container = Path(match.group(1))
    assert in_container.is_relative_to("/opt/airflow/include")
    on_host = ROOT / "include" / in_container.relative_to("/opt/airflow/include")
    assert read_rows(on_host)
    assert (ROOT / "include" / "crawlops" / "crawl_config.py").is_file()
    init = compose["services"]["airflow-init"]
    mysql = json.loads(init["environment"]["AIRFLOW_CONN_CRAWL_MYSQL"])
    assert init["environment"]["CRAWLOPS_MYSQL_URL"] == (
        f"mysql://{mysql['login']}:{mysql['password']}@{mysql['host']}:{mysql['port']}/{mysql['schema']}"
    )


def test_the_login_is_set_not_generated_and_documented(compose):
    services = compose["services"]
    api = services["airflow-apiserver"]
    env = api["environment"]
    assert env["AIRFLOW__CORE__AUTH_MANAGER"].endswith(".SimpleAuthManager")
    assert "admin:admin" in env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")
    passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    # airflow-init writes the file onto a volume the api-server mounts (Airflow opens it read-write).
    for name in ("airflow-init", "airflow-apiserver"):
        assert named_volumes(services[name]).get(str(passwords.parent)) in compose["volumes"], name
    script = init_script(compose)
    assert str(passwords) in script and '"admin": os.environ["CRAWLOPS_UI_PASSWORD"]' in script
    assert defaults(services["airflow-init"]["environment"]["CRAWLOPS_UI_PASSWORD"]) == "admin"
    guide = (ROOT / "docs" / "many-machines.md").read_text()
    section = guide[guide.index("## Running with compose") :].split("\n## ", 1)[0]
    assert "`admin` / `admin`" in section and "CRAWLOPS_UI_PASSWORD" in section


def test_the_api_server_can_serve_the_crawl_ops_page(compose):
    """The page is a plugin of the API server: it needs the plugins folder and the crawl connections."""
    api = compose["services"]["airflow-apiserver"]
    assert "./plugins:/opt/airflow/plugins" in api["volumes"]
    assert {"AIRFLOW_CONN_CRAWL_MYSQL", "AIRFLOW_CONN_CRAWL_REDIS"} <= set(api["environment"])
    assert "8080:8080" in [defaults(port) for port in api["ports"]]
    assert (ROOT / "plugins" / "crawl_ops_plugin.py").is_file()
    assert "/opt/airflow/plugins" in DOCKERFILE.read_text()  # crawlops_airflow importable


# --- the image: built from the lock's versions, from a small build context ---


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def pip_run() -> str:
    """The Dockerfile's one RUN with ``pip install``."""
    (run,) = [args for op, args in dockerfile_instructions() if op == "RUN" and "pip install" in args]
    return run


def pip_install() -> tuple[list[str], list[str]]:
    """The options and the requirements of the Dockerfile's one ``pip install``."""
    run = pip_run()
    words = shlex.split(run)
    assert "&&" not in words and words[:2] == ["pip", "install"], run
    options, packages = [], []
    words = words[2:]
    while words:
        word = words.pop(0)
        if word.startswith("-"):
            options.append(word)
            if word in ("-c", "--constraint"):
                options.append(words.pop(0))
        else:
            packages.append(word)
    return options, packages


def name_of(requirement: str) -> str:
    return re.split(r"[=<>!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line):
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_the_image_builds_from_the_locks_versions():
    pins = lock_pins()
    instructions = dockerfile_instructions()
    # The base image is the lock's Airflow.
    arg = next(args for op, args in instructions if op == "ARG" and args.startswith("AIRFLOW_VERSION="))
    assert arg == f"AIRFLOW_VERSION={pins['apache-airflow']}"
    (base,) = [args for op, args in instructions if op == "FROM"]
    assert base.startswith("apache/airflow:${AIRFLOW_VERSION}-python3.")
    # The install takes the lock as constraints, copied into the image.
    options, packages = pip_install()
    assert options.count("-c") == 1, options
    constraints = options[options.index("-c") + 1]
    copies = [args.split() for op, args in instructions if op == "COPY"]
    assert ["requirements.lock", constraints] in copies
    # Every package it installs is pinned there; Airflow itself is held at the base image's version.
    for package in packages:
        assert name_of(package) in pins, f"{package} is not in requirements.lock"
        if re.search(r"==[\d.]+$", package):
            assert package.endswith("==" + pins[name_of(package)]), f"{package} against the lock's pin"
    # The official image installs packages as its airflow user, never as root.
    users = [args for op, args in instructions[: instructions.index(("RUN", pip_run()))] if op == "USER"]
    assert users[-1:] in ([], ["airflow"]), users
    assert "apache-airflow==${AIRFLOW_VERSION}" in packages
    # What requirements.txt asks for Airflow's sake is installed: its providers, the metadata
    # database's driver, what validation uses; the crawler-side Scrapy and the dev tools are not.
    wanted = {name_of(line) for line in (ROOT / "requirements.txt").read_text().splitlines() if "==" in line}
    providers = {name for name in wanted if name.startswith("apache-airflow-providers-")}
    assert {"apache-airflow-providers-mysql", "apache-airflow-providers-redis", "apache-airflow-providers-celery"} <= (
        providers
    )
    installed = {name_of(package) for package in packages}
    # Airflow 3 opens a PostgreSQL metadata database with psycopg2 and, asynchronously, asyncpg.
    assert providers | {"great-expectations", "pymysql", "psycopg2-binary", "asyncpg"} <= installed
    assert {"prometheus-client", "statsd"} <= installed  # /crawl-ops-metrics and Airflow's StatsD
    assert not installed & {"scrapy", "pytest", "playwright", "ruff", "mypy"}


def dockerignore_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as Docker reads it: ``**/`` any folders, ``*`` and ``?`` within one name."""
    out = ""
    for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/")):
        out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    return re.compile(out)


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Left out of the build context: the last pattern matching the path or a folder above it wins."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        regex = dockerignore_regex(pattern.removeprefix("!"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not pattern.startswith("!")
    return ignored


def test_the_build_context_leaves_out_the_venv_and_keeps_what_the_dockerfile_copies(compose):
    patterns = [
        line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and line[0] != "#"
    ]
    assert airflow_services(compose)["airflow-scheduler"]["build"]["context"] == "."
    for path in (
        ".venv/lib/python3.11/site-packages/airflow/__init__.py",
        ".git/HEAD",
        ".airflow/airflow.db",
        ".airflow-test/logs/x.log",
        "bench/results/dispatch.json",
        "include/crawlops/__pycache__/db.cpython-311.pyc",
        ".mypy_cache/3.11/x.json",
        "tests/test_compose.py",
    ):
        assert dockerignored(path, patterns), path
    for op, args in dockerfile_instructions():
        if op == "COPY":
            *sources, _target = args.split()
            for source in sources:
                assert not dockerignored(source, patterns), f"COPY {source} but .dockerignore leaves it out"
                assert (ROOT / source).exists()
    assert not dockerignored("docker/Dockerfile", patterns)


# --- a compose CLI reads the file as compose will ---


def compose_cli() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], check=False, capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    pytest.fail(
        "no compose CLI (docker-compose, or docker with the compose plugin): scripts/bootstrap.sh installs "
        "Debian's docker-compose (run `make venv` as root, or apt-get install docker-compose)"
    )


def compose_config(path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    return subprocess.run(
        [*compose_cli(), "--project-directory", str(ROOT), "-f", str(path), "config", "-q"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_a_compose_cli_accepts_the_file():
    result = compose_config(ROOT / "docker-compose.yaml")
    assert result.returncode == 0, result.stderr
    assert "WARN" not in result.stderr.upper(), result.stderr


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c["services"]["crawl-simulator"]["depends_on"].update(
            {"crawl-queue": {"condition": "service_healthy"}}
        ),
        lambda c: c["services"]["airflow-scheduler"].update({"healthchek": {"test": ["CMD", "true"]}}),
        lambda c: c["services"]["airflow-apiserver"]["depends_on"]["airflow-init"].update({"condition": "done"}),
        lambda c: c["services"]["airflow-worker"]["deploy"].update({"replicas": "two"}),
    ],
    ids=["undefined-dependency", "unknown-option", "bad-condition", "bad-replicas"],
)
def test_the_compose_cli_refuses_a_broken_copy(tmp_path, compose, break_it):
    """The check can fail: the same file, re-serialized, passes; with one defect it does not."""
    intact = tmp_path / "intact.yaml"
    intact.write_text(yaml.safe_dump(compose))
    assert compose_config(intact).returncode == 0, compose_config(intact).stderr
    broken = yaml.safe_load(intact.read_text())
    break_it(broken)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = compose_config(path)
    assert result.returncode != 0, "a broken compose file passed"
    assert result.stderr.strip()


def test_the_airflow_services_share_their_secrets_and_recover_a_dead_worker_as_make_cluster_does(compose):
    """Each container writes its own airflow.cfg: whatever must be equal across them (the API's
    secret key signs log requests to the workers, the JWT secret the tasks' tokens) comes from
    the shared environment; a dead worker's task is failed and retried after the same heartbeat
    timeout that tests/cluster measures."""
    from crawlops_dev.cluster import HEARTBEAT_TIMEOUT

    envs = [svc["environment"] for svc in airflow_services(compose).values()]
    for key in ("AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET"):
        values = {env.get(key) for env in envs}
        assert len(values) == 1 and None not in values, (key, values)
    for env in envs:
        assert env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] == str(HEARTBEAT_TIMEOUT)
        # The result backend names the driver: SQLAlchemy 2.1's bare postgresql means psycopg 3.
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql+psycopg2://")


def test_prometheus_alertmanager_and_airflows_statsd_metrics_are_wired_to_the_shipped_files(compose):
    """Profile observability: Prometheus scrapes the api-server's metrics with the token every
    Airflow service knows, and the StatsD exporter every Airflow service sends to; the rules and
    the routing tree are the ones make test checks."""
    services = compose["services"]
    for name, svc in airflow_services(compose).items():
        env = svc["environment"]
        assert str(env["AIRFLOW__METRICS__STATSD_ON"]).lower() == "true", name
        assert (
            env["AIRFLOW__METRICS__STATSD_HOST"] == "statsd-exporter" and env["AIRFLOW__METRICS__STATSD_PORT"] == "9125"
        )
        assert svc["depends_on"]["statsd-exporter"]["condition"] == "service_started", name
        # the same metrics settings as make cluster's
        from crawlops_dev.observability import airflow_env

        for key, value in airflow_env(Path("/nonexistent")).items():
            if key.startswith("AIRFLOW__METRICS__") and key != "AIRFLOW__METRICS__STATSD_HOST":
                assert str(env[key]).lower() == value.lower(), (name, key)
    token = airflow_services(compose)["airflow-apiserver"]["environment"]["CRAWLOPS_METRICS_TOKEN"]
    prometheus = services["prometheus"]
    assert prometheus["environment"]["CRAWLOPS_METRICS_TOKEN"] == token
    assert prometheus["profiles"] == services["alertmanager"]["profiles"] == ["observability"]
    mounts = {target: source for source, target, *_ in (v.split(":") for v in prometheus["volumes"])}
    config = yaml.safe_load((ROOT / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    assert (
        ROOT / mounts["/etc/prometheus/crawlops-rules.yml"]
    ) == ROOT / "deploy" / "prometheus" / "crawlops-rules.yml"
    assert config["rule_files"] == ["/etc/prometheus/crawlops-rules.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["crawlops"]["metrics_path"] == "/crawl-ops-metrics/metrics"
    assert jobs["crawlops"]["static_configs"][0]["targets"] == ["airflow-apiserver:8080"]
    assert jobs["crawlops"]["authorization"]["credentials_file"] in prometheus["command"][0]  # written from the token
    assert jobs["airflow-statsd"]["static_configs"][0]["targets"] == ["statsd-exporter:9102"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    exporter = services["statsd-exporter"]
    assert "./deploy/prometheus/statsd-mapping.yml:/etc/statsd/statsd-mapping.yml:ro" in exporter["volumes"]
    assert "--statsd.mapping-config=/etc/statsd/statsd-mapping.yml" in exporter["command"]
    alertmanager = services["alertmanager"]
    assert "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in alertmanager["volumes"]
