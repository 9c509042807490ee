// @ts-check
// End-to-end: Debian's Chromium (headless, through playwright-core) against the real service on a real
// anvil dev chain. Run by tests/frontend/test_frontend.py, which starts the chain and the service:
//
//   SMALLTTS_E2E_URL=http://127.0.0.1:8000 SMALLTTS_E2E_REFERENCE=ref.wav node tests/e2e/paid-flow.mjs
//
// Case 1 pays with the page's dev wallet and checks the audio, its waveform (drawn, click-to-seek), the receipt
// and the on-chain balance.
// Case 2 records a reference from Chromium's fake microphone, saves it as a voice and picks it, then
// connects an unfunded injected (EIP-6963) wallet and checks that the payment is refused in plain words and
// no audio appears. Screenshots go to SMALLTTS_E2E_ARTIFACTS (default test-artifacts/).
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { createPublicClient, erc20Abi, http } from "viem";
import { generatePrivateKey } from "viem/accounts";
import { installInjectedWallet } from "./injectedWallet.mjs";

const baseUrl = required("SMALLTTS_E2E_URL");
const referencePath = required("SMALLTTS_E2E_REFERENCE");
const artifacts = path.resolve(process.env.SMALLTTS_E2E_ARTIFACTS ?? "test-artifacts");
const executablePath = process.env.SMALLTTS_E2E_CHROMIUM ?? "/usr/bin/chromium";
// 2 s is a whole number of latent frames (15 at 7.5 frames/s), so the audio lasts exactly what was asked.
const DURATION_S = 2;
const EXPECTED_AUDIO_S = 2;
const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // The page only plays audio; no sound card is needed or wanted on a CI machine.
  "--mute-audio",
  // A fake microphone (a beeping tone) that needs no permission prompt, for the recording case.
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
];

/** @param {string} name */
function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

/** @returns {Promise<{ rpc_url: string, token_address: `0x${string}`, payer_address: `0x${string}`, chain_id: number }>} */
async function devchainFacts() {
  const response = await fetch(`${baseUrl}/v1/devchain`);
  assert.equal(response.status, 200, "the service must run on the dev chain");
  return response.json();
}

/** @param {number} durationS @returns {Promise<bigint>} */
async function quoteAtomic(durationS) {
  const response = await fetch(`${baseUrl}/v1/price?duration=${durationS}`);
  assert.equal(response.status, 200);
  const quote = /** @type {{ amount_atomic: string }} */ (await response.json());
  return BigInt(quote.amount_atomic);
}

/**
 * A fresh headless Chromium with an empty profile; console errors and page errors are collected.
 * @param {(context: import("playwright-core").BrowserContext) => Promise<void>} [prepare]
 */
async function openPage(prepare) {
  const profile = await mkdtemp(path.join(tmpdir(), "smalltts-e2e-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1100, height: 900 },
  });
  if (prepare) await prepare(context);
  const page = context.pages()[0] ?? (await context.newPage());
  /** @type {string[]} */
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    // The unpaid first request is answered 402 by design (it carries the price); Chromium logs every
    // non-2xx fetch as a console error, so exactly that line is expected. Anything else is a failure.
    if (/status of 402 \(Payment Required\)/.test(message.text())) return;
    problems.push(`console error: ${message.text()}`);
  });
  const close = async () => {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  };
  return { page, problems, close };
}

/** @param {import("playwright-core").Page} page */
async function uploadReference(page) {
  await page.getByLabel("Reference audio file").setInputFiles(referencePath);
  await page.getByLabel("Reference voice playback").waitFor();
}

/** Record ~1.5 s from the fake microphone, store it as a saved voice, and pick that voice.
 * @param {import("playwright-core").Page} page */
async function recordSaveAndPickVoice(page) {
  await page.getByLabel("Record").check();
  await page.getByRole("button", { name: "Start recording" }).click();
  await page.getByRole("button", { name: /^Stop recording/ }).waitFor();
  await page.waitForTimeout(1500);
  await page.getByRole("button", { name: /^Stop recording/ }).click();
  await page.getByLabel("Reference voice playback").waitFor();
  const name = `e2e recording ${Date.now()}`; // unique, so reruns against one service pick this take
  await page.getByLabel("Save this reference as").fill(name);
  await page.getByRole("button", { name: "Save voice" }).click();
  await page.getByText(`Saved as “${name}”.`).waitFor(); // the service decoded and stored the WAV
  await page.getByLabel(/^Saved voice \(\d+\)$/).check();
  const select = page.getByLabel("Saved voice", { exact: true });
  const option = select.locator("option", { hasText: name });
  await select.selectOption((await option.getAttribute("value")) ?? "");
  // The saved voice plays back from the server: the browser loads and decodes its stored reference.
  const player = page.getByLabel("Reference voice playback");
  assert.match((await player.getAttribute("src")) ?? "", /\/v1\/voices\/[^/]+\/audio$/);
  const durationS = await player.evaluate(
    (audio) =>
      new Promise((resolve, reject) => {
        if (!(audio instanceof HTMLAudioElement)) return reject(new Error("the player is not an <audio>"));
        if (audio.readyState >= HTMLMediaElement.HAVE_METADATA) return resolve(audio.duration);
        audio.addEventListener("loadedmetadata", () => resolve(audio.duration), { once: true });
        audio.addEventListener("error", () => reject(new Error(`saved voice audio failed: ${audio.error?.message}`)), { once: true });
        audio.load();
      }),
  );
  assert.ok(Number(durationS) > 0.5, `saved voice plays ${durationS} s; the recording was ~1.5 s`);
}

/** @param {import("playwright-core").Page} page @param {(page: import("playwright-core").Page) => Promise<void>} chooseReference */
async function fillRequest(page, chooseReference) {
  await page.getByRole("heading", { name: "Make speech" }).waitFor();
  await chooseReference(page);
  const text = page.getByLabel("Text to speak");
  await text.fill("Hello from the browser test. ");
  await text.press("End");
  await page.getByRole("button", { name: "[laughter]" }).click();
  assert.match(await text.inputValue(), /\[laughter\]/);
  await page.getByLabel("Manual").check();
  await page.getByLabel("Length in seconds").fill(String(DURATION_S));
  await page.getByTestId("price").filter({ hasText: `for ${DURATION_S.toFixed(2)} s` }).waitFor();
}

async function paysWithTheDevWallet() {
  const facts = await devchainFacts();
  const chain = createPublicClient({ transport: http(facts.rpc_url) });
  /** @param {`0x${string}`} owner */
  const balanceOf = (owner) =>
    chain.readContract({ address: facts.token_address, abi: erc20Abi, functionName: "balanceOf", args: [owner] });
  const price = await quoteAtomic(DURATION_S);
  const before = await balanceOf(facts.payer_address);

  const { page, problems, close } = await openPage();
  try {
    await page.goto(baseUrl);
    await page.getByRole("button", { name: "Use dev wallet" }).click();
    await page.getByTestId("payer-address").waitFor();
    await fillRequest(page, uploadReference);
    const pay = page.getByRole("button", { name: /^Pay .* and synthesize$/ });
    assert.equal(await pay.innerText(), `Pay ${formatUsdc(price)} and synthesize`);
    await pay.click();

    const audio = page.getByTestId("result-audio");
    await audio.waitFor({ timeout: 30_000 });
    const played = await audio.evaluate(async (element) => {
      const player = /** @type {HTMLAudioElement} */ (element);
      if (player.readyState < 1) {
        await new Promise((resolve, reject) => {
          player.addEventListener("loadedmetadata", resolve, { once: true });
          player.addEventListener("error", () => reject(new Error("the audio did not load")), { once: true });
        });
      }
      return { src: player.currentSrc, duration: player.duration, canPlay: player.canPlayType("audio/wav") };
    });
    assert.match(played.src, /^blob:/);
    assert.notEqual(played.canPlay, "");
    assert.ok(
      Math.abs(played.duration - EXPECTED_AUDIO_S) < 0.01,
      `audio lasts ${played.duration} s, expected ${EXPECTED_AUDIO_S} s`,
    );

    const waveform = await checkWaveform(page, EXPECTED_AUDIO_S);

    const tx = (await page.getByTestId("tx-hash").innerText()).trim();
    assert.match(tx, /^0x[0-9a-f]{64}$/);
    // A local transaction: no link to Base Sepolia's explorer, although the chain id is the same.
    assert.equal(await page.getByTestId("tx-hash").locator("a").count(), 0);
    const receipt = await chain.getTransactionReceipt({ hash: /** @type {`0x${string}`} */ (tx) });
    assert.equal(receipt.status, "success");
    const after = await balanceOf(facts.payer_address);
    assert.equal(before - after, price, `the payer paid ${before - after}, the quote was ${price}`);
    const download = page.getByRole("link", { name: /^Download / });
    assert.match((await download.getAttribute("download")) ?? "", /\.wav$/);

    await page.screenshot({ path: path.join(artifacts, "paid-flow.png"), fullPage: true });
    assert.deepEqual(problems, []);
    console.log(`dev wallet: paid ${price} atomic units in ${tx}, audio ${played.duration} s`);
    console.log(`waveform: drawn (${waveform.inked} of ${waveform.pixels} pixels), a click at half seeks to ${waveform.seekedS} s`);
  } finally {
    await close();
  }
}

/**
 * The waveform above the player: drawn from the returned WAV (more ink than the flat line and the playhead
 * alone), and a click halfway along seeks the player to half the clip.
 * @param {import("playwright-core").Page} page @param {number} lengthS
 */
async function checkWaveform(page, lengthS) {
  const canvas = page.getByTestId("result-waveform");
  await canvas.waitFor();
  const inkOf = () =>
    canvas.evaluate((element) => {
      const drawing = /** @type {HTMLCanvasElement} */ (element);
      const context = drawing.getContext("2d");
      if (!context || drawing.width < 2) return { inked: 0, pixels: 0, width: drawing.width };
      const { data } = context.getImageData(0, 0, drawing.width, drawing.height);
      let inked = 0;
      for (let alpha = 3; alpha < data.length; alpha += 4) if ((data[alpha] ?? 0) > 0) inked++;
      return { inked, pixels: drawing.width * drawing.height, width: drawing.width };
    });
  let ink = await inkOf();
  for (let tries = 0; ink.inked === 0 && tries < 50; tries++) {
    await page.waitForTimeout(100);
    ink = await inkOf();
  }
  assert.ok(ink.inked > 4 * ink.width, `the waveform is blank or flat: ${ink.inked} inked pixels, ${ink.width} wide`);

  const box = await canvas.boundingBox();
  assert.ok(box, "the waveform has no box");
  await canvas.click({ position: { x: box.width / 2, y: box.height / 2 } });
  const seekedS = await page
    .getByTestId("result-audio")
    .evaluate((element) => /** @type {HTMLAudioElement} */ (element).currentTime);
  assert.ok(Math.abs(seekedS - lengthS / 2) < 0.05, `a click at half the waveform seeked to ${seekedS} s of ${lengthS} s`);
  return { ...ink, seekedS: Number(seekedS.toFixed(2)) };
}

async function unfundedWalletIsRefused() {
  const facts = await devchainFacts();
  const { page, problems, close } = await openPage(async (context) => {
    await installInjectedWallet(context, {
      privateKey: generatePrivateKey(),
      chainId: facts.chain_id,
      rpcUrl: facts.rpc_url,
      name: "E2E Wallet",
    });
  });
  try {
    await page.goto(baseUrl);
    await page.getByRole("button", { name: "Connect E2E Wallet" }).click();
    await page.getByTestId("payer-address").waitFor();
    await page.getByTestId("balance").filter({ hasText: "0.00 USDC" }).waitFor();
    await fillRequest(page, recordSaveAndPickVoice);
    await page.getByRole("button", { name: /^Pay .* and synthesize$/ }).click();
    const error = page.getByTestId("error");
    await error.waitFor({ timeout: 30_000 });
    assert.match(await error.innerText(), /does not hold enough USDC/);
    assert.equal(await page.getByTestId("result-audio").count(), 0);
    await page.screenshot({ path: path.join(artifacts, "unfunded-wallet.png"), fullPage: true });
    assert.deepEqual(problems, []);
    console.log("recorded voice saved and picked; unfunded wallet: refused with the insufficient-funds message, no audio");
  } finally {
    await close();
  }
}

/** "0.000334 USDC" for 334 atomic units, as the page writes prices. @param {bigint} atomic */
function formatUsdc(atomic) {
  const fraction = (atomic % 1_000_000n).toString().padStart(6, "0").replace(/0+$/, "").padEnd(2, "0");
  return `${atomic / 1_000_000n}.${fraction} USDC`;
}

await mkdir(artifacts, { recursive: true });
await paysWithTheDevWallet();
await unfundedWalletIsRefused();
