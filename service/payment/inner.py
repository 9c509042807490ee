"""The inner facilitators: what actually verifies (signature, amount, payTo, simulation) and settles.

    ThreadedFacilitator   local mode: the SDK's x402FacilitatorSync + FacilitatorWeb3Signer, run in payment
                          worker threads (its web3 calls block); settlement is simulated before it is sent
    RemoteFacilitator     facilitator mode: the SDK's HTTPFacilitatorClient (async), its failures named
                          FacilitatorUnavailableError

The SDK swallows most RPC exceptions into reason codes, so in local mode the web3 signer is wrapped
(`ObservedSigner`) to note them on the current PaymentAttempt where they happen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import httpx
from x402 import x402FacilitatorSync
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.mechanisms.evm import FacilitatorWeb3Signer
from x402.mechanisms.evm.exact import register_exact_evm_facilitator
from x402.mechanisms.evm.types import TransactionReceipt
from x402.schemas import PaymentPayload, PaymentRequirements, SettleResponse, SupportedResponse, VerifyResponse

from service.errors import ServiceBaseError
from service.payment.attempt import current_attempt, run_in_thread
from service.payment.chain import RPC_TRANSPORT_ERRORS

T = TypeVar("T")

MESSAGE_RPC_UNREACHABLE = "the payment network's RPC is unreachable"
MESSAGE_FACILITATOR_UNREACHABLE = "the payment facilitator did not answer with a verdict"


class InnerFacilitator(Protocol):
    async def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse: ...

    async def settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse: ...

    def get_supported(self) -> SupportedResponse: ...


class ObservedSigner:
    """FacilitatorWeb3Signer, with RPC transport failures noted on the current PaymentAttempt.

    The SDK turns most exceptions raised by its signer into reason codes (a dead RPC during verification
    becomes `invalid_exact_evm_failed_to_verify_signature`), which would wrongly answer 402 for our outage.
    """

    def __init__(self, inner: FacilitatorWeb3Signer) -> None:
        self._inner = inner

    def _observe(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except RPC_TRANSPORT_ERRORS:
            attempt = current_attempt.get()
            if attempt is not None:
                attempt.note_unavailable(MESSAGE_RPC_UNREACHABLE)
            raise

    @property
    def address(self) -> str:
        return self._inner.address

    def get_addresses(self) -> list[str]:
        return self._inner.get_addresses()

    def get_chain_id(self) -> int:
        return self._observe(self._inner.get_chain_id)

    def read_contract(self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any) -> Any:
        return self._observe(self._inner.read_contract, address, abi, function_name, *args)

    def verify_typed_data(self, *args: Any) -> bool:
        return self._observe(self._inner.verify_typed_data, *args)

    def write_contract(
        self, address: str, abi: list[dict[str, Any]], function_name: str, *args: Any, data_suffix: str | None = None
    ) -> str:
        return self._observe(
            lambda: self._inner.write_contract(address, abi, function_name, *args, data_suffix=data_suffix)
        )

    def send_transaction(self, to: str, data: bytes) -> str:
        return self._observe(self._inner.send_transaction, to, data)

    def wait_for_transaction_receipt(self, tx_hash: str) -> TransactionReceipt:
        return self._observe(self._inner.wait_for_transaction_receipt, tx_hash)

    def get_balance(self, address: str, token_address: str) -> int:
        return self._observe(self._inner.get_balance, address, token_address)

    def get_code(self, address: str) -> bytes:
        return self._observe(self._inner.get_code, address)


class ThreadedFacilitator:
    """The SDK's synchronous in-process facilitator, each call in a worker thread (its web3 calls block)."""

    def __init__(self, sync_facilitator: x402FacilitatorSync) -> None:
        self._sync = sync_facilitator

    async def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        return await run_in_thread(self._sync.verify, payload, requirements, abandon_on_cancel=True)

    async def settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        return await run_in_thread(self._sync.settle, payload, requirements, abandon_on_cancel=True)

    def get_supported(self) -> SupportedResponse:
        return self._sync.get_supported()


def build_local_facilitator(
    *, private_key: str, rpc_url: str, network: str, confirmation_timeout_s: float
) -> ThreadedFacilitator:
    """In-process verification and settlement with our own gas key (local mode).

    Settlement re-runs the transfer simulation just before it sends: between verification and settlement
    the payer may have moved its funds, or a contract wallet may answer differently, and a transaction that
    would revert costs our gas for nothing.
    """
    signer = FacilitatorWeb3Signer(
        private_key=private_key, rpc_url=rpc_url, confirmation_timeout_seconds=confirmation_timeout_s
    )
    sync_facilitator = x402FacilitatorSync()
    register_exact_evm_facilitator(sync_facilitator, ObservedSigner(signer), networks=network, simulate_in_settle=True)
    return ThreadedFacilitator(sync_facilitator)


class FacilitatorUnavailableError(ServiceBaseError, RuntimeError):
    """The remote facilitator could not be reached or answered something other than a verdict."""


class RemoteFacilitator:
    """The SDK's client of a remote facilitator (facilitator mode), with its failures named as such.

    The SDK raises httpx errors for a dead facilitator and a bare ValueError for a non-200 answer or an
    unparseable one: both mean "no verdict", which the adapter answers with 503, not 402. The exception
    text (which holds the facilitator URL and its error body) is kept for the log, never for clients.
    """

    def __init__(self, client: HTTPFacilitatorClient) -> None:
        self._client = client

    async def verify(self, payload: PaymentPayload, requirements: PaymentRequirements) -> VerifyResponse:
        try:
            return await self._client.verify(payload, requirements)
        except (httpx.HTTPError, ValueError) as exc:
            raise FacilitatorUnavailableError(f"facilitator {self._client.url}: {exc}") from exc

    async def settle(self, payload: PaymentPayload, requirements: PaymentRequirements) -> SettleResponse:
        try:
            return await self._client.settle(payload, requirements)
        except (httpx.HTTPError, ValueError) as exc:
            raise FacilitatorUnavailableError(f"facilitator {self._client.url}: {exc}") from exc

    async def aclose(self) -> None:
        """Close the connections to the facilitator (at shutdown: a kept-alive one would outlive the app)."""
        await self._client.aclose()

    def get_supported(self) -> SupportedResponse:
        try:
            return self._client.get_supported()
        except (httpx.HTTPError, ValueError) as exc:
            raise FacilitatorUnavailableError(f"facilitator {self._client.url}: {exc}") from exc


def build_remote_facilitator(url: str, timeout_s: float) -> RemoteFacilitator:
    """Verification and settlement by a remote x402 facilitator (facilitator mode)."""
    return RemoteFacilitator(HTTPFacilitatorClient(FacilitatorConfig(url=url, timeout=timeout_s)))
