// Who pays: a wallet connected through wagmi (an extension, the Coinbase Smart Wallet or WalletConnect), or on
// the dev chain the funded dev payer as a local viem account. Both end up as the ClientEvmSigner the x402
// client signs with.
import type { ClientEvmSigner } from "@x402/evm";
import { createContext, useContext, useMemo, useState, type ReactNode } from "react";
import type { Address, SignTypedDataParameters } from "viem";
import { privateKeyToAccount, type LocalAccount } from "viem/accounts";
import { useConnection, useDisconnect, useWalletClient } from "wagmi";

export interface DevWallet {
  address: Address;
  privateKey: `0x${string}`;
}

export type Payer =
  | { kind: "dev"; address: Address; signer: ClientEvmSigner; chainId: number }
  | { kind: "wagmi"; address: Address; signer: ClientEvmSigner | null; chainId: number | undefined; name: string };

interface PayerContextValue {
  requiredChainId: number;
  devWallet: DevWallet | null;
  devAccount: LocalAccount | null;
  setDevOn: (on: boolean) => void;
}

const PayerContext = createContext<PayerContextValue | null>(null);

export function PayerProvider(props: { requiredChainId: number; devWallet: DevWallet | null; children: ReactNode }) {
  const { requiredChainId, devWallet, children } = props;
  const [devOn, setDevOn] = useState(false);
  const devAccount = useMemo(
    () => (devWallet && devOn ? privateKeyToAccount(devWallet.privateKey) : null),
    [devWallet, devOn],
  );
  const value = useMemo(
    () => ({ requiredChainId, devWallet, devAccount, setDevOn }),
    [requiredChainId, devWallet, devAccount],
  );
  return <PayerContext.Provider value={value}>{children}</PayerContext.Provider>;
}

function usePayerContext(): PayerContextValue {
  const context = useContext(PayerContext);
  if (!context) throw new Error("usePayer needs a <PayerProvider>");
  return context;
}

/** The current payer, or null when no wallet is connected. The dev wallet wins over a wagmi one. */
export function usePayer(): Payer | null {
  const { devAccount, requiredChainId } = usePayerContext();
  const connection = useConnection();
  const { data: walletClient } = useWalletClient({ chainId: requiredChainId });

  return useMemo((): Payer | null => {
    if (devAccount) {
      return { kind: "dev", address: devAccount.address, signer: devAccount, chainId: requiredChainId };
    }
    if (connection.status !== "connected" || !connection.address) return null;
    const account = walletClient?.account;
    const signer: ClientEvmSigner | null =
      walletClient && account
        ? {
            address: account.address,
            // The x402 scheme hands over plain records; viem checks them against the EIP-712 types at run time.
            signTypedData: (data) =>
              walletClient.signTypedData({ account, ...data } as unknown as SignTypedDataParameters),
          }
        : null;
    return {
      kind: "wagmi",
      address: connection.address,
      signer,
      chainId: connection.chainId,
      name: connection.connector?.name ?? "Wallet",
    };
  }, [devAccount, requiredChainId, connection.status, connection.address, connection.chainId, connection.connector, walletClient]);
}

/** Turn the dev wallet on or off; connecting it disconnects a wagmi wallet so only one can pay. */
export function useDevWalletSwitch() {
  const { devWallet, devAccount, setDevOn } = usePayerContext();
  const { mutate: disconnect } = useDisconnect();
  return {
    available: devWallet !== null,
    active: devAccount !== null,
    connect: () => {
      disconnect();
      setDevOn(true);
    },
    disconnect: () => setDevOn(false),
  };
}
