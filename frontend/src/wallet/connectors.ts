// Wallets that need no browser extension: the Coinbase Smart Wallet (a passkey in a keys.coinbase.com popup,
// no app id) and, when the service publishes a project id, WalletConnect (a phone wallet by QR code).
//
// Neither is in the wagmi config. wagmi sets up and reconnects every configured connector at page load, which
// would load their SDKs and open WalletConnect's relay socket for every visitor (and on an offline test
// machine). Instead each is built when the user picks it and handed to `connect`; its SDK is imported then.
import { base, baseSepolia } from "viem/chains";
import type { CreateConnectorFn } from "wagmi";
import { coinbaseWallet, walletConnect } from "wagmi/connectors";

export type WalletOptionId = "coinbaseSmartWallet" | "walletConnect";

export interface WalletOption {
  id: WalletOptionId;
  /** The button says "Connect <label>". */
  label: string;
  /** One sentence on what the user will see and what the wallet needs. */
  hint: string;
  /** wagmi's connector for it, built only when the user picks it. */
  create: () => CreateConnectorFn;
}

export interface WalletSetup {
  /** The payment chain's id. */
  chainId: number;
  /** The local anvil: neither wallet can reach it (the page offers its dev wallet there), so none is offered. */
  devChain: boolean;
  /** From /v1/config; null: no WalletConnect. */
  walletConnectProjectId: string | null;
  /** From /v1/config: a smart wallet pays as a contract wallet, which the service refuses unless enabled. */
  contractWalletsAccepted: boolean;
}

const APP_NAME = "smalltts";
// The Coinbase Smart Wallet is deployed on these (among others); the service takes payment on one of them.
const SMART_WALLET_CHAIN_IDS: readonly number[] = [base.id, baseSepolia.id];

/** The extension-free wallets to offer next to the extensions, in the order the buttons appear. */
export function walletOptions(setup: WalletSetup): WalletOption[] {
  if (setup.devChain) return [];
  const options: WalletOption[] = [];
  if (setup.contractWalletsAccepted && SMART_WALLET_CHAIN_IDS.includes(setup.chainId)) {
    options.push({
      id: "coinbaseSmartWallet",
      label: "Coinbase Smart Wallet",
      hint: "Coinbase Smart Wallet: create or use a passkey in a pop-up; no extension or app.",
      // smartWalletOnly: the passkey wallet, never the Coinbase Wallet extension or app.
      create: () =>
        named(coinbaseWallet({ appName: APP_NAME, preference: { options: "smartWalletOnly" } }), "Coinbase Smart Wallet"),
    });
  }
  const projectId = setup.walletConnectProjectId;
  if (projectId) {
    options.push({
      id: "walletConnect",
      label: "WalletConnect",
      hint: "WalletConnect: scan a QR code with a wallet app on your phone.",
      create: () =>
        walletConnect({
          projectId,
          showQrModal: true,
          metadata: {
            name: APP_NAME,
            description: "Voice-cloning text to speech, paid per second with x402.",
            url: window.location.origin,
            icons: [],
          },
        }),
    });
  }
  return options;
}

/** `connectorFn` under another name (wagmi's coinbaseWallet calls itself "Coinbase Wallet" in every mode). */
function named(connectorFn: CreateConnectorFn, name: string): CreateConnectorFn {
  return (config) => ({ ...connectorFn(config), name });
}

/** What the page says about a connected smart wallet: the service verifies it as a contract wallet. */
export const SMART_WALLET_NOTE =
  "A smart wallet pays as a contract wallet: it must have sent one transaction (so that its contract is " +
  "deployed) before the service can check its signature.";
