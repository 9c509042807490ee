// Plain-words text for the x402 reason codes a payment can fail with (x402 spec v2 §9 plus the Python SDK's
// additions). The server puts the code in `error` of a 402's PAYMENT-REQUIRED header (verify failed) or in
// `errorReason` of the PAYMENT-RESPONSE header (settlement failed).

const REASONS: Record<string, string> = {
  insufficient_funds: "Your wallet does not hold enough USDC to pay for this request.",
  invalid_exact_evm_insufficient_balance: "Your wallet does not hold enough USDC to pay for this request.",
  invalid_exact_evm_payload_signature: "The payment signature was not accepted. Try again with the same wallet.",
  invalid_exact_evm_payload_authorization_valid_before:
    "The payment authorization expired before it reached the server. Check your computer's clock and try again.",
  invalid_exact_evm_payload_authorization_valid_after:
    "The payment authorization is not valid yet. Check your computer's clock and try again.",
  invalid_exact_evm_payload_authorization_value_mismatch: "The signed amount does not match the price.",
  invalid_exact_evm_payload_recipient_mismatch: "The payment was addressed to the wrong recipient.",
  invalid_exact_evm_nonce_already_used: "This payment was already used. Nothing more was charged.",
  invalid_exact_evm_token_name_mismatch: "The token your wallet signed for is not the one the server accepts.",
  invalid_exact_evm_token_version_mismatch: "The token your wallet signed for is not the one the server accepts.",
  invalid_exact_evm_transaction_simulation_failed: "The payment would fail on-chain, so it was not sent.",
  invalid_exact_evm_payload_undeployed_smart_wallet: "Smart-contract wallets that are not deployed yet cannot pay.",
  contract_wallet_not_accepted:
    "This service does not accept payments from contract (smart) wallets. Pay from a regular account instead.",
  invalid_network: "The payment was signed for another network.",
  network_mismatch: "The payment was signed for another network.",
  invalid_scheme: "The payment uses a scheme the server does not accept.",
  unsupported_scheme: "The payment uses a scheme the server does not accept.",
  invalid_x402_version: "The payment uses a protocol version the server does not accept.",
  invalid_payload: "The payment could not be read by the server.",
  invalid_payment_requirements: "The payment does not match what the server asked for.",
  "No matching payment requirements": "The payment does not match the current price. Nothing was charged.",
  transaction_failed: "The payment transaction failed on-chain. Nothing was charged.",
  settlement_pending:
    "The payment was sent but not confirmed in time. Check the transaction before trying again, so you do not pay twice.",
  unexpected_verify_error: "The server could not check the payment. Nothing was charged.",
  unexpected_settle_error: "The server could not complete the payment.",
};

/** Plain-words text for an x402 reason code; unknown codes are shown as they are. */
export function describePaymentReason(code: string | undefined): string {
  if (!code) return "The payment was refused.";
  return REASONS[code] ?? `The payment was refused (${code}).`;
}

export function isInsufficientFunds(code: string | undefined): boolean {
  return code === "insufficient_funds" || code === "invalid_exact_evm_insufficient_balance";
}
