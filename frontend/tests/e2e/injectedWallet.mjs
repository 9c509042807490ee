// @ts-check
// A browser wallet for the end-to-end test: an EIP-1193 provider announced through EIP-6963, living in the
// page, whose keys stay in Node. The page's wagmi `injected` connector finds it like any extension wallet;
// signatures are made here with a viem local account, and every other JSON-RPC call goes to the chain.
import { privateKeyToAccount } from "viem/accounts";

/**
 * @typedef {{ address: `0x${string}`, name: string }} InjectedWalletInfo
 */

/**
 * Install the wallet into every page of `context` before any page script runs.
 * @param {import("playwright-core").BrowserContext} context
 * @param {{ privateKey: `0x${string}`, chainId: number, rpcUrl: string, name: string }} options
 * @returns {Promise<InjectedWalletInfo>}
 */
export async function installInjectedWallet(context, { privateKey, chainId, rpcUrl, name }) {
  const account = privateKeyToAccount(privateKey);
  let rpcId = 0;
  // Like a real extension: the site sees no account until the user approves it (eth_requestAccounts).
  let approved = false;

  /** @param {string} method @param {unknown[]} params @returns {Promise<unknown>} */
  const handle = async (method, params) => {
    switch (method) {
      case "eth_requestAccounts":
        approved = true;
        return [account.address];
      case "eth_accounts":
        return approved ? [account.address] : [];
      case "eth_chainId":
        return `0x${chainId.toString(16)}`;
      case "net_version":
        return String(chainId);
      case "wallet_switchEthereumChain":
      case "wallet_addEthereumChain":
        return null;
      case "wallet_requestPermissions":
        approved = true;
        return [{ parentCapability: "eth_accounts" }];
      case "wallet_getPermissions":
        return approved ? [{ parentCapability: "eth_accounts" }] : [];
      case "wallet_revokePermissions":
        approved = false;
        return null;
      case "eth_signTypedData_v4": {
        const [, json] = /** @type {[string, string]} */ (params);
        const { domain, types, primaryType, message } = JSON.parse(json);
        const { EIP712Domain: _domainType, ...structTypes } = types;
        return account.signTypedData({ domain, types: structTypes, primaryType, message });
      }
      default: {
        const response = await fetch(rpcUrl, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
        });
        const body = /** @type {{ result?: unknown, error?: { code: number, message: string } }} */ (
          await response.json()
        );
        if (body.error) throw Object.assign(new Error(body.error.message), { code: body.error.code });
        return body.result;
      }
    }
  };

  await context.exposeFunction("__e2eWalletRequest", async (/** @type {string} */ method, /** @type {string} */ paramsJson) => {
    try {
      return JSON.stringify({ result: (await handle(method, JSON.parse(paramsJson))) ?? null });
    } catch (error) {
      const { message = String(error), code = -32603 } = /** @type {{ message?: string, code?: number }} */ (error);
      return JSON.stringify({ error: { message, code } });
    }
  });

  await context.addInitScript(
    ({ walletName }) => {
      /** @type {Record<string, Function[]>} */
      const listeners = {};
      const provider = {
        /** @param {{ method: string, params?: unknown[] }} args */
        request: async ({ method, params }) => {
          // @ts-expect-error -- exposed by Playwright
          const reply = JSON.parse(await window.__e2eWalletRequest(method, JSON.stringify(params ?? [])));
          if (reply.error) throw Object.assign(new Error(reply.error.message), { code: reply.error.code });
          return reply.result;
        },
        /** @param {string} event @param {Function} listener */
        on: (event, listener) => {
          (listeners[event] ??= []).push(listener);
        },
        /** @param {string} event @param {Function} listener */
        removeListener: (event, listener) => {
          listeners[event] = (listeners[event] ?? []).filter((fn) => fn !== listener);
        },
      };
      const info = {
        uuid: "6f1c8a52-0d8e-4a55-9c5b-e2e000000001",
        name: walletName,
        icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'/%3E",
        rdns: "dev.smalltts.e2e",
      };
      const announce = () =>
        window.dispatchEvent(
          new CustomEvent("eip6963:announceProvider", { detail: Object.freeze({ info, provider }) }),
        );
      window.addEventListener("eip6963:requestProvider", announce);
      announce();
    },
    { walletName: name },
  );
  return { address: account.address, name };
}
