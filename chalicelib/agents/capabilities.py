"""OpAMP agent capability bits and their names (AgentCapabilities of the OpAMP specification)."""

from __future__ import annotations

#: Bit → name, in bit order, exactly as the OpAMP ``AgentCapabilities`` enum defines them.
AGENT_CAPABILITIES: tuple[tuple[int, str], ...] = (
    (0x00000001, "ReportsStatus"),
    (0x00000002, "AcceptsRemoteConfig"),
    (0x00000004, "ReportsEffectiveConfig"),
    (0x00000008, "AcceptsPackages"),
    (0x00000010, "ReportsPackageStatuses"),
    (0x00000020, "ReportsOwnTraces"),
    (0x00000040, "ReportsOwnMetrics"),
    (0x00000080, "ReportsOwnLogs"),
    (0x00000100, "AcceptsOpAMPConnectionSettings"),
    (0x00000200, "AcceptsOtherConnectionSettings"),
    (0x00000400, "AcceptsRestartCommand"),
    (0x00000800, "ReportsHealth"),
    (0x00001000, "ReportsRemoteConfig"),
    (0x00002000, "ReportsHeartbeat"),
    (0x00004000, "ReportsAvailableComponents"),
    (0x00008000, "ReportsConnectionSettingsStatus"),
)

ACCEPTS_REMOTE_CONFIG = 0x00000002
ACCEPTS_OPAMP_CONNECTION_SETTINGS = 0x00000100


def capability_names(mask: int) -> list[str]:
    """The names of the capabilities set in ``mask``; unknown bits are ignored."""
    return [name for bit, name in AGENT_CAPABILITIES if mask & bit]


def has(mask: int, bit: int) -> bool:
    """Whether ``mask`` declares the capability ``bit``."""
    return bool(mask & bit)
