import { InitialSchema1795392000000 } from './1795392000000-InitialSchema.js';
import { RefreshTokenHistory1795400000000 } from './1795400000000-RefreshTokenHistory.js';
import { MailBudget1795410000000 } from './1795410000000-MailBudget.js';
import { LoginFailures1795420000000 } from './1795420000000-LoginFailures.js';
import { TotpSecondFactor1795430000000 } from './1795430000000-TotpSecondFactor.js';
import { LoginChecksInFlight1795440000000 } from './1795440000000-LoginChecksInFlight.js';

/** Every migration, oldest first. Listed explicitly so src (tests) and dist run the same set. */
export const MIGRATIONS = [
  InitialSchema1795392000000,
  RefreshTokenHistory1795400000000,
  MailBudget1795410000000,
  LoginFailures1795420000000,
  TotpSecondFactor1795430000000,
  LoginChecksInFlight1795440000000,
];
