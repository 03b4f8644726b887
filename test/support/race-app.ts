import { newUser, type SeededUser } from './factories.js';
import { openTrackedGates } from './race.js';
import { SmtpCapture } from './smtp-capture.js';
import { TestApp } from './test-app.js';

/** What the attack-races suites run against. */
export interface RaceApp {
  t: TestApp;
  capture: SmtpCapture;
  admin: SeededUser;
}

/**
 * The app with a real SMTP capture, and an admin. The throttles are out of the way: a race signs one
 * address in many times, and the throttle is not what these suites test.
 */
export async function startRaceApp(): Promise<RaceApp> {
  const capture = await SmtpCapture.start();
  const t = await TestApp.start({
    MAIL_URL: capture.url,
    MAIL_POLL_INTERVAL: '50ms',
    AUTH_THROTTLE_EMAIL_LIMIT: '10000',
    AUTH_THROTTLE_IP_LIMIT: '10000',
  });
  return { t, capture, admin: await newUser(t, { role: 'admin' }) };
}

export async function stopRaceApp({ t, capture }: RaceApp): Promise<void> {
  await t.close();
  await capture.stop();
}

/** After each test: every tracked gate opened (no request left hanging by a failed assertion), spies restored. */
export function releaseRaces(): void {
  openTrackedGates();
  jest.restoreAllMocks();
}
