import { useConnect, useConnection, useConnectors, useDisconnect, useSwitchChain } from "wagmi";
import { shortAddress } from "../wallet/chains";
import { SMART_WALLET_NOTE, type WalletOption } from "../wallet/connectors";
import { useDevWalletSwitch, usePayer } from "../wallet/payer";
import { formatToken } from "./format";

interface WalletPanelProps {
  chainName: string;
  requiredChainId: number;
  /** Extension-free wallets, built only when picked (see wallet/connectors.ts). */
  wallets: WalletOption[];
  /** The payer's token balance in atomic units, or null while unknown. */
  balanceAtomic: bigint | null;
  decimals: number;
  /** The current quote, to warn before paying when the balance is short. */
  priceAtomic: bigint | null;
}

/** Connect a browser wallet, an extension-free one, or the dev wallet on the dev chain; check its network,
 * show its balance. */
export function WalletPanel({ chainName, requiredChainId, wallets, balanceAtomic, decimals, priceAtomic }: WalletPanelProps) {
  const payer = usePayer();
  const connection = useConnection();
  const connectors = useConnectors();
  const connect = useConnect();
  const { mutate: disconnect } = useDisconnect();
  const switchChain = useSwitchChain();
  const dev = useDevWalletSwitch();

  // wagmi lists the generic "Injected" connector next to the EIP-6963 ones; show it only when it is alone.
  const announced = connectors.filter((connector) => connector.id !== "injected");
  const choices = announced.length > 0 ? announced : connectors;
  const wrongChain = payer?.kind === "wagmi" && payer.chainId !== requiredChainId;
  const short = balanceAtomic !== null && priceAtomic !== null && balanceAtomic < priceAtomic;

  return (
    <section className="card" aria-labelledby="wallet-heading">
      <h2 id="wallet-heading">Wallet</h2>
      {payer === null ? (
        <>
          <p className="muted">Connect a wallet to pay per request in USDC on {chainName}.</p>
          <div className="row">
            {choices.map((connector) => (
              <button
                key={connector.uid}
                type="button"
                onClick={() => {
                  dev.disconnect();
                  connect.mutate({ connector, chainId: requiredChainId });
                }}
                disabled={connect.isPending}
              >
                Connect {connector.name === "Injected" ? "browser wallet" : connector.name}
              </button>
            ))}
            {wallets.map((option) => (
              <button
                key={option.id}
                type="button"
                onClick={() => {
                  dev.disconnect();
                  // Built now, so its SDK loads (and WalletConnect opens its socket) only for who picks it.
                  connect.mutate({ connector: option.create(), chainId: requiredChainId });
                }}
                disabled={connect.isPending}
              >
                Connect {option.label}
              </button>
            ))}
            {dev.available && (
              <button type="button" onClick={dev.connect}>
                Use dev wallet
              </button>
            )}
          </div>
          {wallets.length > 0 && (
            <ul className="muted hints">
              {wallets.map((option) => (
                <li key={option.id}>{option.hint}</li>
              ))}
            </ul>
          )}
          {choices.length === 0 && wallets.length === 0 && !dev.available && (
            <p className="muted">No browser wallet found. Install one (for example MetaMask) and reload.</p>
          )}
          {connect.error && (
            <p className="error" role="alert">
              Could not connect: {connect.error.message.split("\n")[0]}
            </p>
          )}
        </>
      ) : (
        <>
          <dl className="details">
            <dt>Wallet</dt>
            <dd>{payer.kind === "dev" ? "dev wallet (local test key)" : payer.name}</dd>
            <dt>Address</dt>
            <dd>
              <code title={payer.address} data-testid="payer-address">
                {shortAddress(payer.address)}
              </code>
            </dd>
            <dt>Network</dt>
            <dd>{wrongChain ? `chain ${payer.chainId ?? "unknown"}` : chainName}</dd>
            <dt>Balance</dt>
            <dd data-testid="balance">{balanceAtomic === null ? "…" : formatToken(balanceAtomic, decimals)}</dd>
          </dl>
          {wrongChain && (
            <div className="warning" role="alert">
              <p>Your wallet is on another network. This service takes payment on {chainName}.</p>
              <button
                type="button"
                onClick={() => switchChain.mutate({ chainId: requiredChainId })}
                disabled={switchChain.isPending}
              >
                Switch to {chainName}
              </button>
              {switchChain.error && <p>Could not switch: {switchChain.error.message.split("\n")[0]}</p>}
            </div>
          )}
          {connection.connector?.type === "coinbaseWallet" && payer.kind === "wagmi" && (
            <p className="muted">{SMART_WALLET_NOTE}</p>
          )}
          {short && !wrongChain && (
            <p className="warning">
              Your balance is below the price of this request; the payment will be refused. Add USDC on {chainName}.
            </p>
          )}
          <p>
            <button
              type="button"
              onClick={() => {
                if (payer.kind === "dev") dev.disconnect();
                else disconnect({ connector: connection.connector });
              }}
            >
              Disconnect
            </button>
          </p>
        </>
      )}
    </section>
  );
}
