import { applyDecorators } from '@nestjs/common';
import { ApiExtension } from '@nestjs/swagger';
import { Authenticated } from '../common/auth/decorators.js';

/** The OpenAPI extension that marks an operation as serving a user-owned resource. */
export const OWNED_RESOURCE = 'x-owned-resource';

/**
 * On a controller whose routes serve one user-owned resource (`/things` and `/things/{id}`): requires
 * a signed-in caller and marks every operation in the OpenAPI document, where the IDOR sweep
 * (test/support/idor-sweep.ts) finds it and attacks it with a second account, no new test code needed.
 */
export const OwnedResource = () => applyDecorators(Authenticated(), ApiExtension(OWNED_RESOURCE, true));
