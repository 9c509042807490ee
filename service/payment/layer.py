"""PaymentLayer: everything a paying service holds, built from the settings, and its startup checks.

    PaymentLayer(payment, limits)   terms, pricing, ledger, chain reads, the guarded facilitator, the SDK server
    layer.start_blocking()          the chain-id check (the service refuses to start on the wrong chain), opening
                                    the ledger, reconciling what a previous run left unsettled
    layer.reconcile_forever()       the background reconciliation loop
    layer.running()                 both, and closing, around the app's serving (entered by create_app's lifespan)
    check_payments(app)             the startup checks now, for the CLI (one error line instead of a traceback)

service.payment.install puts the layer around the app's paid routes.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import anyio
from fastapi import FastAPI
from x402 import x402ResourceServer
from x402.http import PaymentOption
from x402.http.types import HTTPRequestContext, RouteConfig
from x402.mechanisms.evm.exact import register_exact_evm_server
from x402.schemas import AssetAmount, PaymentRequirements, ResourceConfig, ResourceInfo

from model.errors import InputError
from service.errors import ServiceBaseError
from service.payment.attempt import redact, set_payment_threads
from service.payment.authorization import ValidityPolicy
from service.payment.chain import ChainUnavailableError, TokenChain
from service.payment.facilitator import GuardedFacilitator
from service.payment.inner import (
    FacilitatorUnavailableError,
    InnerFacilitator,
    build_local_facilitator,
    build_remote_facilitator,
)
from service.payment.ledger import Ledger, LedgerError
from service.payment.networks import NETWORKS, PaymentTerms
from service.payment.paid_routes import PAID_ROUTES, PaidRoute
from service.payment.pricing import DurationBounds, Pricing, parse_duration, parse_steps
from service.payment.ratelimit import RateLimiter
from service.payment.reconcile import reconcile_ledger
from service.payment.settings import PaymentSettings, is_loopback_host
from service.payment.vault import AudioVault

logger = logging.getLogger("smalltts.payment")


class PaymentConfigError(ServiceBaseError, InputError):
    """The payment settings cannot work (missing key, wrong chain, ...): the service refuses to start."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, field=field, code="payment_config", status=500)


@dataclass(frozen=True)
class AppLimits:
    """What the payment layer needs from the service's own settings."""

    bounds: DurationBounds
    request_timeout_s: float
    max_form_bytes: int  # whole multipart body of /synthesize
    max_json_bytes: int  # whole JSON body of /v1/audio/speech
    max_text_chars: int
    max_steps: int
    data_dir: Path

    def body_limits(self) -> dict[str, int]:
        return {
            route.path: self.max_form_bytes if route.body_kind == "form" else self.max_json_bytes
            for route in PAID_ROUTES
        }


def _env(field: str) -> str:
    return f"SMALLTTS_PAYMENT__{field.upper()}"


def resolve_terms(payment: PaymentSettings) -> tuple[PaymentTerms, str]:
    """The payment terms and the RPC URL, or PaymentConfigError naming the missing setting."""
    network = NETWORKS[payment.network]
    hint = " (`smalltts run` starts a dev chain and fills it in)" if payment.network == "devchain" else ""
    asset = payment.asset or network.usdc_address
    if asset is None:
        raise PaymentConfigError(f"network {network.name} needs {_env('asset')}{hint}", field=_env("asset"))
    if payment.pay_to is None:
        raise PaymentConfigError(f"{_env('pay_to')} is required to take payments{hint}", field=_env("pay_to"))
    rpc_url = payment.rpc_url or network.public_rpc_url
    if rpc_url is None:
        raise PaymentConfigError(f"network {network.name} needs {_env('rpc_url')}{hint}", field=_env("rpc_url"))
    terms = PaymentTerms(
        network=network,
        asset=asset,
        token_name=payment.token_name or network.eip712_name,
        token_version=network.eip712_version,
        pay_to=payment.pay_to,
        max_timeout_s=payment.max_timeout_s,
    )
    return terms, rpc_url


class PaymentLayer:
    """Everything a paying service holds: terms, pricing, ledger, chain reads and the SDK server."""

    def __init__(self, payment: PaymentSettings, limits: AppLimits) -> None:
        if payment.mode == "off":
            raise ValueError("PaymentLayer is not built when payments are off")
        needed_s = limits.request_timeout_s + payment.confirmation_timeout_s
        if payment.min_validity_s < needed_s:
            raise PaymentConfigError(
                f"{_env('min_validity_s')}={payment.min_validity_s} is below request_timeout_s + "
                f"confirmation_timeout_s = {needed_s:g}: an authorization could expire before it is settled",
                field=_env("min_validity_s"),
            )
        self.settings = payment
        self.limits = limits
        self.terms, self.rpc_url = resolve_terms(payment)
        self.pricing = Pricing(payment.price_per_minute_usd, self.terms.network.decimals, payment.min_charge_usd)
        # The model's default step count, known once the model is loaded: steps up to it cost the base price.
        self.included_steps: Callable[[], int | None] = lambda: None
        self.owner = payment.instance_id or socket.gethostname()
        ledger_url = payment.ledger_url or f"sqlite:///{limits.data_dir / 'payments.sqlite3'}"
        self.ledger = Ledger(ledger_url)
        self.chain = TokenChain(self.rpc_url, self.terms.asset, timeout_s=payment.rpc_timeout_s)
        set_payment_threads(payment.max_threads)
        self.vault = AudioVault()
        self.client_limit = _limiter(payment.client_attempts_per_min, payment.attempts_burst)
        self.facilitator = GuardedFacilitator(
            self._build_inner(),
            self.ledger,
            ValidityPolicy(payment.min_validity_s, payment.max_timeout_s, payment.validity_slack_s),
            chain=self.chain,
            owner=self.owner,
            verify_timeout_s=payment.rpc_timeout_s,
            settle_timeout_s=payment.confirmation_timeout_s + payment.rpc_timeout_s,
            payer_limit=_limiter(payment.payer_attempts_per_min, payment.attempts_burst),
            allow_contract_wallets=payment.allow_contract_wallets,
            confirm_settlements=payment.mode == "facilitator",
        )
        self.server = x402ResourceServer(self.facilitator)
        register_exact_evm_server(self.server, networks=self.terms.network.caip2)
        self._started = False

    def _build_inner(self) -> InnerFacilitator:
        payment = self.settings
        if payment.mode == "local":
            if payment.facilitator_private_key is None:
                raise PaymentConfigError(
                    f"local mode settles with our own gas key: set {_env('facilitator_private_key')}",
                    field=_env("facilitator_private_key"),
                )
            return build_local_facilitator(
                private_key=payment.facilitator_private_key.get_secret_value(),
                rpc_url=self.rpc_url,
                network=self.terms.network.caip2,
                confirmation_timeout_s=payment.confirmation_timeout_s,
            )
        if payment.facilitator_url is None:
            raise PaymentConfigError(f"facilitator mode needs {_env('facilitator_url')}", field=_env("facilitator_url"))
        return build_remote_facilitator(payment.facilitator_url, timeout_s=payment.confirmation_timeout_s + 10)

    # --- prices and requirements ---------------------------------------------------------------------------

    def asset_amount(self, duration_s: Decimal, steps: int | None = None) -> AssetAmount:
        amount = self.pricing.amount_atomic(duration_s, steps, self.included_steps())
        return AssetAmount(amount=str(amount), asset=self.terms.asset, extra=self.terms.extra)

    def price_of_request(self, context: HTTPRequestContext) -> AssetAmount:
        """The SDK's dynamic price: the edge middleware has put the canonical duration (and steps) in the query."""
        raw = context.adapter.get_query_param("duration")
        if not isinstance(raw, str):
            raise ValueError("duration missing from a paid request that passed the payment edge")
        raw_steps = context.adapter.get_query_param("steps")
        steps = parse_steps(raw_steps, self.limits.max_steps) if isinstance(raw_steps, str) else None
        return self.asset_amount(parse_duration(raw, self.limits.bounds), steps)

    def requirements_for(
        self, duration_s: Decimal, steps: int | None, resource_url: str, route: PaidRoute
    ) -> tuple[list[PaymentRequirements], ResourceInfo]:
        config = ResourceConfig(
            scheme="exact",
            pay_to=self.terms.pay_to,
            price=self.asset_amount(duration_s, steps),
            network=self.terms.network.caip2,
            max_timeout_seconds=self.terms.max_timeout_s,
        )
        resource = ResourceInfo(url=resource_url, description=route.description, mime_type=route.mime_type)
        return self.server.build_payment_requirements(config), resource

    def route_configs(self) -> dict[str, RouteConfig]:
        option = PaymentOption(
            scheme="exact",
            pay_to=self.terms.pay_to,
            price=self.price_of_request,
            network=self.terms.network.caip2,
            max_timeout_seconds=self.terms.max_timeout_s,
        )
        return {
            route.key: RouteConfig(accepts=[option], description=route.description, mime_type=route.mime_type)
            for route in PAID_ROUTES
        }

    # --- lifecycle --------------------------------------------------------------------------------------------

    def start_blocking(self) -> None:
        """Startup checks and reconciliation (blocking; the lifespan runs it in a thread). Runs once: the CLI
        may call it before uvicorn (to refuse bad settings with one line), the lifespan then skips it.

        Raises:
            PaymentConfigError: wrong chain, no token at `asset`, RPC or ledger unreachable.
        """
        if self._started:
            return
        network = self.terms.network
        try:
            chain_id = self.chain.chain_id()
            if chain_id != network.chain_id:
                raise PaymentConfigError(
                    f"the RPC {redact(self.rpc_url)} serves chain id {chain_id}, but network {network.name} is "
                    f"chain id {network.chain_id}: refusing to take payments on the wrong chain",
                    field=_env("rpc_url"),
                )
            if network.name == "devchain":
                self._check_devchain()
            if not self.chain.has_code(self.terms.asset):
                raise PaymentConfigError(
                    f"no contract at asset {self.terms.asset} on {network.name}", field=_env("asset")
                )
        except ChainUnavailableError as exc:
            raise PaymentConfigError(f"cannot start taking payments: {exc}", field=_env("rpc_url")) from exc
        try:
            self.ledger.open()
        except LedgerError as exc:
            raise PaymentConfigError(f"cannot open the payment ledger: {exc}", field=_env("ledger_url")) from exc
        try:
            self.server.initialize()
        except FacilitatorUnavailableError as exc:
            raise PaymentConfigError(
                f"the facilitator at {self.settings.facilitator_url} did not answer: {exc}",
                field=_env("facilitator_url"),
            ) from exc
        self.reconcile(after_restart=True)
        self._started = True
        logger.info(
            "payments on: %s mode, %s (%s), asset %s, pay_to %s, $%s/min, ledger %s",
            self.settings.mode, network.name, network.caip2, self.terms.asset, self.terms.pay_to,
            self.settings.price_per_minute_usd, self.ledger.dialect,
        )  # fmt: skip

    def _check_devchain(self) -> None:
        # The dev chain shares Base Sepolia's chain id, so the chain-id check cannot tell a real Sepolia RPC
        # from a local anvil: insist on a loopback anvil.
        host = urlsplit(self.rpc_url).hostname or ""
        version = self.chain.client_version()
        if not is_loopback_host(host) or not version.lower().startswith("anvil"):
            raise PaymentConfigError(
                f"network devchain is a local anvil on this machine; the RPC {redact(self.rpc_url)} is "
                f"{version or 'unknown'} on {host or 'no host'}: use network base-sepolia for a real testnet",
                field=_env("rpc_url"),
            )

    def reconcile(self, *, after_restart: bool) -> None:
        report = reconcile_ledger(
            self.ledger, self.chain, owner=self.owner, now=time.time(), after_restart=after_restart
        )
        if report.settled or report.failed or report.pending:
            logger.info(
                "payment ledger reconciled: %d settled, %d failed, %d pending, %d unchanged",
                len(report.settled), len(report.failed), len(report.pending), report.unchanged,
            )  # fmt: skip

    async def reconcile_forever(self) -> None:
        while True:
            await anyio.sleep(self.settings.reconcile_interval_s)
            try:
                await anyio.to_thread.run_sync(lambda: self.reconcile(after_restart=False))
            except (ChainUnavailableError, LedgerError) as exc:
                logger.warning("payment reconciliation skipped: %s", exc)

    def close(self) -> None:
        self.ledger.close()
        self._started = False

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The layer while the app serves, for create_app's lifespan: startup checks, then the reconciliation
        loop; on the way out the facilitator's connections and the ledger are closed."""
        await anyio.to_thread.run_sync(self.start_blocking)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(self.reconcile_forever)
            try:
                yield
            finally:
                tasks.cancel_scope.cancel()
        await self.facilitator.aclose()
        self.close()


def _limiter(per_minute: float, burst: int) -> RateLimiter | None:
    return RateLimiter(per_minute, burst) if per_minute > 0 else None


def check_payments(app: FastAPI) -> None:
    """Run the payment startup checks now (for the CLI, before uvicorn): a bad chain or an unreachable RPC or
    ledger becomes one PaymentConfigError line instead of a failed startup with a traceback."""
    layer: PaymentLayer | None = getattr(app.state, "payment", None)
    if layer is not None:
        layer.start_blocking()
