"""The ``perturbations:`` config section: what the scheduler may do, how often, and its limits.

Off by default (``enabled: false``): no scheduler is attached and the town runs exactly as
without this section (the section is then left out of the config identity, too). With
``enabled: true`` each kind fires about ``per_day`` times per sim day on a jittered
timetable (``per_day: 0`` turns a kind's schedule off; the console and Python can still
trigger it by hand). See docs/environment.md, "Perturbations".
"""

from __future__ import annotations

from pydantic import Field, model_validator

from townlet_env.strict import Strict

DAY = 1440  # ticks per sim day (townlet_env.config.TICKS_PER_DAY; not imported: config imports us)


class KindConfig(Strict):
    """Schedule and limits shared by every kind."""

    per_day: float = Field(0.0, ge=0.0, le=24.0, description="scheduled firings per sim day (0: by hand only)")
    duration: tuple[int, int] = Field((60, 120), description="ticks, drawn uniformly from [low, high]")
    cooldown_ticks: int = Field(240, ge=0, le=30 * DAY, description="after one ends, the next of this kind waits")
    max_per_window: int = Field(2, ge=1, le=1000, description="starts of this kind per window_ticks")

    @model_validator(mode="after")
    def _check(self) -> KindConfig:
        lo, hi = self.duration
        if not 1 <= lo <= hi <= 7 * DAY:
            raise ValueError(f"duration must be [low, high] ticks with 1 <= low <= high <= {7 * DAY}")
        return self


class PriceSpikeConfig(KindConfig):
    """Prices of one economy key are multiplied by ``magnitude`` for the duration."""

    per_day: float = Field(1.0, ge=0.0, le=24.0, description="scheduled firings per sim day (0: by hand only)")
    duration: tuple[int, int] = Field((90, 240), description="ticks, drawn uniformly from [low, high]")
    magnitude: tuple[float, float] = Field((1.3, 2.0), description="price multiplier, drawn from [low, high]")
    keys: tuple[str, ...] = Field(("meal", "ingredients", "shower"), min_length=1, description="economy.prices keys")

    @model_validator(mode="after")
    def _check_magnitude(self) -> PriceSpikeConfig:
        lo, hi = self.magnitude
        if not 0.0 < lo <= hi <= 100.0:
            raise ValueError("magnitude must be [low, high] with 0 < low <= high <= 100")
        return self


class OutageConfig(KindConfig):
    """A share of the objects of ``object_types`` go out of service for the duration."""

    per_day: float = Field(0.5, ge=0.0, le=24.0, description="scheduled firings per sim day (0: by hand only)")
    duration: tuple[int, int] = Field((30, 90), description="ticks, drawn uniformly from [low, high]")
    cooldown_ticks: int = Field(480, ge=0, le=30 * DAY, description="after one ends, the next of this kind waits")
    max_per_window: int = Field(1, ge=1, le=1000, description="starts of this kind per window_ticks")
    object_types: tuple[str, ...] = Field(min_length=1, description="manifest object types the utility feeds")
    share: float = Field(0.5, gt=0.0, le=1.0, description="share of those objects that fail (rounded up)")


class PowerOutageConfig(OutageConfig):
    """A power outage: stoves go cold (the fridges keep their stock)."""

    object_types: tuple[str, ...] = Field(("stove",), min_length=1, description="manifest object types it closes")


class WaterOutageConfig(OutageConfig):
    """A water outage: showers run dry."""

    object_types: tuple[str, ...] = Field(("shower",), min_length=1, description="manifest object types it closes")


class MeetConfig(KindConfig):
    """Two agents are asked to meet at an object of type ``place`` within the duration."""

    per_day: float = Field(1.0, ge=0.0, le=24.0, description="scheduled firings per sim day (0: by hand only)")
    duration: tuple[int, int] = Field((240, 480), description="ticks; long enough to span some free time of both")
    place: str = Field("fridge", description="manifest object type where they meet")
    radius: int = Field(3, ge=0, le=16, description="both within this many tiles of one such object")
    bonus: float = Field(2.0, ge=0.0, le=10.0, description="scale of the chat_success tie event when they meet")


class CityEventConfig(KindConfig):
    """A town-wide event (a festival): no identity ends while it runs and for a grace after."""

    per_day: float = Field(0.25, ge=0.0, le=24.0, description="scheduled firings per sim day (0: by hand only)")
    cooldown_ticks: int = Field(720, ge=0, le=30 * DAY, description="after one ends, the next of this kind waits")
    max_per_window: int = Field(1, ge=1, le=1000, description="starts of this kind per window_ticks")


class PerturbationConfig(Strict):
    """The scheduler: kinds, and the limits that keep perturbations rare, spread and fair."""

    enabled: bool = Field(False, description="attach the scheduler (off: the town runs as without this section)")
    max_concurrent: int = Field(2, ge=1, le=16, description="perturbations active at once")
    stagger_ticks: int = Field(10, ge=0, le=DAY, description="least gap between two starts")
    global_cooldown_ticks: int = Field(30, ge=0, le=DAY, description="after any ends, none starts for this long")
    window_ticks: int = Field(DAY, ge=1, le=30 * DAY, description="the window of the max_per_window caps")
    max_per_window: int = Field(6, ge=1, le=1000, description="starts of all kinds per window")
    agent_cooldown_ticks: int = Field(720, ge=0, le=30 * DAY, description="a targeted agent rests this long")
    exit_grace_ticks: int = Field(60, ge=0, le=DAY, description="exits stay held this long after a city event")
    jitter: float = Field(0.3, ge=0.0, lt=1.0, description="firings fall within +-jitter/2 gaps of their grid")
    price_spike: PriceSpikeConfig = Field(default_factory=PriceSpikeConfig)
    power_outage: PowerOutageConfig = Field(default_factory=PowerOutageConfig)
    water_outage: WaterOutageConfig = Field(default_factory=WaterOutageConfig)
    arranged_meet: MeetConfig = Field(default_factory=MeetConfig)
    city_event: CityEventConfig = Field(default_factory=CityEventConfig)

    def kinds(self) -> dict[str, KindConfig]:
        """Each kind's section by name, in :class:`~townlet_env.world.events.PerturbationKind` order."""
        return {
            "price_spike": self.price_spike,
            "power_outage": self.power_outage,
            "water_outage": self.water_outage,
            "arranged_meet": self.arranged_meet,
            "city_event": self.city_event,
        }

    def check_prices(self, prices: dict[str, float]) -> None:
        """Raise ``ValueError`` if ``price_spike.keys`` names a key that is no economy price."""
        unknown = [k for k in self.price_spike.keys if k not in prices]
        if unknown:
            raise ValueError(
                f"perturbations.price_spike.keys: {unknown} are no economy.prices keys; choose from {sorted(prices)}"
            )
