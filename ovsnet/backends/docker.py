"""Docker networks through the Docker Engine API (the `docker` SDK), never `docker` command lines.

Also the few container calls `ovsnet verify` needs for its probe containers
(ovsnet/probes.py): does an image exist, run one, list by label, remove.

One client per run, talking to one daemon: the host's `docker_host`
setting, else $DOCKER_HOST (with $DOCKER_TLS_VERIFY/$DOCKER_CERT_PATH, as
the docker CLI reads them), else the local socket. Constructing the
backend pings the daemon, so "Docker is not there" is known before
anything is planned, and apply.py can still apply the OVS and Linux side.

`docker` is imported inside functions only: it is an optional dependency
(`pip install 'ovsnet[docker]'`) and the CLI imports this module lazily.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ovsnet.current import DockerNetwork
from ovsnet.errors import BackendError

DEFAULT_HOST = "unix:///var/run/docker.sock"
TIMEOUT = 10.0  # seconds per API call; a local daemon answers in milliseconds
# Starting a container (namespaces, cgroups, an AppArmor profile, runc) takes
# seconds, and a minute under software emulation: measured on the test-bed VMs.
START_TIMEOUT = 120.0

OPT_BRIDGE = "com.docker.network.bridge.name"
OPT_INHIBIT_IPV4 = "com.docker.network.bridge.inhibit_ipv4"
OPT_MTU = "com.docker.network.driver.mtu"
# Set when ovsnet asked for no subnet and Docker picked one from its pools:
# read() then reports the subnet as "not set", as it was asked, so a second
# `up` does not see a difference and recreate the network.
AUTO_SUBNET_LABEL = "org.ovsnet.auto-subnet"


@dataclass(frozen=True)
class NetworkSpec:
    """A bridge-driver network on an existing Linux bridge, no address on the host's side."""

    name: str
    bridge: str
    subnet: str | None
    gateway: str | None
    ip_range: str | None
    mtu: int
    labels: Mapping[str, str] = field(default_factory=dict)
    # IPv6 (the network is created with IPv6 enabled when subnet6 is set); the three above are IPv4.
    subnet6: str | None = None
    gateway6: str | None = None
    ip_range6: str | None = None


@dataclass(frozen=True)
class ContainerAddress:
    """A container's attachment to one network, as Docker's IPAM gave it."""

    ip: str  # "" when Docker gave no IPv4 address
    prefixlen: int
    mac: str | None = None
    ip6: str = ""  # "" when Docker gave no IPv6 address (a network without IPv6)
    prefixlen6: int = 0

    @property
    def interface(self) -> str:
        return f"{self.ip}/{self.prefixlen}"

    @property
    def interface6(self) -> str | None:
        return f"{self.ip6}/{self.prefixlen6}" if self.ip6 else None


@dataclass(frozen=True)
class Container:
    """What ovsnet needs of a container: identity, labels, its process, its addresses."""

    id: str
    name: str
    image: str
    running: bool
    pid: int  # 0 when not running
    created: str  # RFC 3339, as Docker reports it
    labels: Mapping[str, str] = field(default_factory=dict)
    networks: Mapping[str, ContainerAddress] = field(default_factory=dict)


def resolve_host(docker_host: str | None) -> str:
    """The daemon address a Docker(docker_host) talks to, for messages."""
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST


class Docker:
    """The Docker side of one host: read every network, create and remove networks."""

    def __init__(self, docker_host: str | None = None, timeout: float = TIMEOUT):
        self.url = resolve_host(docker_host)
        if self.url.startswith("unix://") and not os.path.exists(self.url[len("unix://"):]):
            # No socket, no daemon: said before importing the SDK (0.2 s) to find out.
            raise BackendError(f"Docker is not reachable at {self.url}: {_why_unreachable(self.url, FileNotFoundError())}")
        try:
            import docker
        except ImportError:
            raise BackendError(
                "the Docker SDK for Python is not installed, so Docker networks cannot be managed: "
                "pip install docker (a dependency of ovsnet)"
            ) from None
        self._errors = docker.errors
        try:
            if docker_host:
                self._client = docker.DockerClient(base_url=docker_host, timeout=timeout)
            else:
                # $DOCKER_HOST and its TLS settings, as the docker CLI reads them.
                self._client = docker.from_env(timeout=timeout)
            self._client.ping()
        except Exception as exc:  # the SDK raises DockerException or requests' errors
            raise BackendError(f"Docker is not reachable at {self.url}: {_why_unreachable(self.url, exc)}") from None

    def __enter__(self) -> Docker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
            self._client = None

    # --- reading ---------------------------------------------------------------

    def read(self) -> dict[str, DockerNetwork]:
        """Every network the daemon has, by name, with the names of its running containers.

        Docker allows two networks with one name (when created without the
        duplicate check); then the one that is not ovsnet's is reported, so
        the planner refuses rather than touch a stranger's network.
        """
        api = self._client.api
        try:
            summaries = api.networks()
        except Exception as exc:
            raise BackendError(f"Docker at {self.url}: cannot list networks: {_explain(exc)}") from None
        out: dict[str, DockerNetwork] = {}
        for summary in summaries:
            try:
                info = api.inspect_network(summary["Id"])
            except self._errors.NotFound:
                continue  # removed between the list and the inspect
            except Exception as exc:
                raise BackendError(f"Docker at {self.url}: cannot inspect network {summary.get('Name')}: {_explain(exc)}") from None
            net = network_from_inspect(info)
            seen = out.get(net.name)
            if seen is None or (seen.owner is not None and net.owner is None):
                out[net.name] = net
        return out

    # --- applying --------------------------------------------------------------

    def create_network(self, op: NetworkSpec) -> None:
        from docker.types import IPAMConfig, IPAMPool

        options = {OPT_INHIBIT_IPV4: "true", OPT_MTU: str(op.mtu)}
        if op.bridge:
            options[OPT_BRIDGE] = op.bridge
        labels = dict(op.labels)
        pools = []
        if op.subnet:
            pools.append(IPAMPool(subnet=op.subnet, iprange=op.ip_range, gateway=op.gateway))
            labels.pop(AUTO_SUBNET_LABEL, None)
        else:
            # Docker picks an IPv4 pool of its own (also beside an IPv6 one): not the topology's.
            labels[AUTO_SUBNET_LABEL] = "true"
        if op.subnet6:
            pools.append(IPAMPool(subnet=op.subnet6, iprange=op.ip_range6, gateway=op.gateway6))
        ipam = IPAMConfig(pool_configs=pools) if pools else None
        try:
            self._client.api.create_network(
                op.name, driver="bridge", options=options, ipam=ipam, labels=labels, check_duplicate=True,
                enable_ipv6=bool(op.subnet6),
            )
        except Exception as exc:
            where = f" on bridge {op.bridge}" if op.bridge else ""
            raise BackendError(f"Docker network {op.name}: cannot create it{where} ({_pool(op)}): {_explain(exc)}") from None

    # --- containers (verify's probes) -----------------------------------------

    def has_image(self, image: str) -> bool:
        """Whether the daemon has this image locally; nothing is ever pulled."""
        try:
            self._client.api.inspect_image(image)
        except self._errors.NotFound:
            return False
        except Exception as exc:
            raise BackendError(f"Docker at {self.url}: cannot look up image {image}: {_explain(exc)}") from None
        return True

    def run_container(
        self,
        image: str,
        command: Sequence[str],
        *,
        name: str,
        network: str,
        labels: Mapping[str, str],
        auto_remove: bool = True,
    ) -> Container:
        """Create and start a container attached to `network` only; removed again if it cannot start."""
        api = self._client.api
        # No capabilities: a probe only has to exist (it is pinged, and pinged
        # from, by the host entering its namespace), never to act.
        host_config = api.create_host_config(network_mode=network, auto_remove=auto_remove, cap_drop=["ALL"])
        try:
            created = api.create_container(image, command=list(command), name=name, labels=dict(labels), host_config=host_config, detach=True)
        except Exception as exc:
            raise BackendError(f"Docker at {self.url}: cannot create container {name} from {image} on network {network}: {_explain(exc)}") from None
        cid = created["Id"]
        try:
            api.start(cid)
            return container_from_inspect(api.inspect_container(cid))
        except BaseException as exc:
            self.remove_container(cid)
            if isinstance(exc, Exception):
                raise BackendError(f"Docker at {self.url}: cannot start container {name} from {image} on network {network}: {_explain(exc)}") from None
            raise

    def containers(self, label: str, value: str | None = None) -> list[Container]:
        """Every container (running or not) carrying the label (with that value, if given)."""
        api = self._client.api
        wanted = f"{label}={value}" if value is not None else label
        try:
            found = api.containers(all=True, filters={"label": wanted})
        except Exception as exc:
            raise BackendError(f"Docker at {self.url}: cannot list containers: {_explain(exc)}") from None
        out = []
        for summary in found:
            try:
                out.append(container_from_inspect(api.inspect_container(summary["Id"])))
            except self._errors.NotFound:
                continue  # removed between the list and the inspect (auto-remove)
            except Exception as exc:
                raise BackendError(f"Docker at {self.url}: cannot inspect container {summary['Id'][:12]}: {_explain(exc)}") from None
        return out

    def remove_container(self, container_id: str) -> None:
        """Force-remove; a container that is gone, or already being removed, is what was asked."""
        try:
            self._client.api.remove_container(container_id, force=True)
        except self._errors.NotFound:
            pass
        except self._errors.APIError as exc:
            # Auto-remove may race with us: "removal of container ... is already in progress".
            if getattr(getattr(exc, "response", None), "status_code", None) == 409 and "in progress" in _explain(exc):
                return
            raise BackendError(f"Docker at {self.url}: cannot remove container {container_id[:12]}: {_explain(exc)}") from None
        except Exception as exc:
            raise BackendError(f"Docker at {self.url}: cannot remove container {container_id[:12]}: {_explain(exc)}") from None

    def remove_network(self, name: str) -> None:
        api = self._client.api
        try:
            # The name filter matches substrings: keep exact names only.
            ids = [n["Id"] for n in api.networks(names=[name]) if n.get("Name") == name]
        except Exception as exc:
            raise BackendError(f"Docker network {name}: cannot look it up: {_explain(exc)}") from None
        if len(ids) > 1:
            raise BackendError(f"Docker network {name}: {len(ids)} networks have this name; remove the extra ones by hand (docker network ls)")
        for net_id in ids:  # none: already gone, which is what was asked
            try:
                api.remove_network(net_id)
            except self._errors.NotFound:
                pass
            except Exception as exc:
                raise BackendError(f"Docker network {name}: cannot remove it: {_explain(exc)}") from None


def network_from_inspect(info: Mapping[str, Any]) -> DockerNetwork:
    """A DockerNetwork from the Engine API's network inspect answer (pure, for tests)."""
    options = info.get("Options") or {}
    labels = dict(info.get("Labels") or {})
    configs = (info.get("IPAM") or {}).get("Config") or []
    # One pool per family; Docker lists an IPv6 pool after the IPv4 one, but
    # each is told by its subnet, not by its place.
    cfg = next((c for c in configs if ":" not in (c.get("Subnet") or "")), configs[0] if configs else {})
    cfg6: Mapping[str, Any] = next((c for c in configs if ":" in (c.get("Subnet") or "")), {})
    if cfg is cfg6:
        cfg = {}
    subnet, gateway = cfg.get("Subnet") or None, cfg.get("Gateway") or None
    if labels.get(AUTO_SUBNET_LABEL) == "true":
        subnet = gateway = None  # Docker's choice, not the topology's
        cfg = {}
    mtu = options.get(OPT_MTU)
    try:
        mtu_value = int(mtu) if mtu not in (None, "") else None
    except (TypeError, ValueError):
        mtu_value = None
    containers = tuple(sorted(c.get("Name") or cid[:12] for cid, c in (info.get("Containers") or {}).items()))
    return DockerNetwork(
        name=info.get("Name", ""),
        id=info.get("Id", ""),
        driver=info.get("Driver", ""),
        bridge=options.get(OPT_BRIDGE) or None,
        subnet=subnet,
        gateway=gateway,
        ip_range=cfg.get("IPRange") or None,
        mtu=mtu_value,
        labels=labels,
        containers=containers,
        subnet6=cfg6.get("Subnet") or None,
        gateway6=cfg6.get("Gateway") or None,
        ip_range6=cfg6.get("IPRange") or None,
    )


def container_from_inspect(info: Mapping[str, Any]) -> Container:
    """A Container from the Engine API's container inspect answer (pure, for tests)."""
    state = info.get("State") or {}
    config = info.get("Config") or {}
    networks = {}
    for net, attach in ((info.get("NetworkSettings") or {}).get("Networks") or {}).items():
        attach = attach or {}
        networks[net] = ContainerAddress(
            ip=attach.get("IPAddress") or "",
            prefixlen=int(attach.get("IPPrefixLen") or 0),
            mac=attach.get("MacAddress") or None,
            ip6=attach.get("GlobalIPv6Address") or "",
            prefixlen6=int(attach.get("GlobalIPv6PrefixLen") or 0),
        )
    return Container(
        id=info.get("Id", ""),
        name=(info.get("Name") or "").lstrip("/"),
        image=config.get("Image") or "",
        running=bool(state.get("Running")),
        pid=int(state.get("Pid") or 0),
        created=info.get("Created") or "",
        labels=dict(config.get("Labels") or {}),
        networks=networks,
    )


def _pool(op: NetworkSpec) -> str:
    text = f"subnet {op.subnet or 'chosen by Docker'}, gateway {op.gateway or '-'}, ip_range {op.ip_range or '-'}"
    if op.subnet6:
        text += f"; subnet6 {op.subnet6}, gateway6 {op.gateway6 or '-'}, ip_range6 {op.ip_range6 or '-'}"
    return text


def _explain(exc: BaseException) -> str:
    """The daemon's own words when it gave some, else the exception's."""
    explanation = getattr(exc, "explanation", None)
    if explanation:
        text = explanation.decode(errors="replace") if isinstance(explanation, bytes) else str(explanation)
        status = getattr(getattr(exc, "response", None), "status_code", None)
        return f"{text} (HTTP {status})" if status else text
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _why_unreachable(url: str, exc: BaseException) -> str:
    """A reason a person can act on, for the usual ways a daemon is missing."""
    if url.startswith("unix://"):
        path = url[len("unix://"):]
        if not os.path.exists(path):
            return f"no socket {path}; is dockerd running? (Docker installed: apt-get install docker.io)"
        if not os.access(path, os.R_OK | os.W_OK):
            return f"permission denied on {path}; run as root or as a member of the docker group"
        return f"nothing answers on {path}; is dockerd running? ({_explain(exc)})"
    return f"is dockerd running and listening there? ({_explain(exc)})"
