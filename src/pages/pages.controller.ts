import { readFileSync } from 'node:fs';
import { Controller, Get, Header, HttpStatus, Param, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../common/auth/decorators.js';
import { AppException } from '../common/problem.js';

const ASSETS = new URL('./assets/', import.meta.url);
const ASSET_TYPES: Record<string, string> = {
  'pages.js': 'text/javascript; charset=utf-8',
  'pages.css': 'text/css; charset=utf-8',
};
const assets = new Map(
  Object.keys(ASSET_TYPES).map((name) => [name, readFileSync(new URL(name, ASSETS), 'utf8')]),
);

function page(title: string, intro: string, action: string, fields: string, submit: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${title} · Gatehouse</title>
<link rel="stylesheet" href="/pages/assets/pages.css">
</head>
<body>
<main>
<div class="brand">GATEHOUSE</div>
<h1>${title}</h1>
<p>${intro}</p>
<form data-action="${action}" novalidate>
${fields}
<button type="submit">${submit}</button>
</form>
<div role="status" aria-live="polite"></div>
</main>
<script src="/pages/assets/pages.js" defer></script>
</body>
</html>
`;
}

const VERIFY_PAGE = page(
  'Confirm your email',
  'Press the button to confirm this address for your account.',
  'verify-email',
  '',
  'Confirm my email',
);

const RESET_PAGE = page(
  'Choose a new password',
  'At least 8 characters; a long passphrase is best. Every device will be signed out.',
  'reset-password',
  `<label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="8" maxlength="128">
<label for="confirm">Repeat it</label>
<input id="confirm" name="confirm" type="password" autocomplete="new-password" required>`,
  'Set new password',
);

/**
 * The small HTML pages behind mailed links. A GET only shows the page (mail scanners and link
 * previews open links); the token is read by the page's script and POSTed when the person acts.
 * The token is never written into the HTML, so nothing in it can be reflected.
 */
@ApiExcludeController()
@Public()
@Controller()
export class PagesController {
  @Get('verify-email')
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('cache-control', 'no-store')
  verifyEmail(): string {
    return VERIFY_PAGE;
  }

  @Get('reset-password')
  @Header('content-type', 'text/html; charset=utf-8')
  @Header('cache-control', 'no-store')
  resetPassword(): string {
    return RESET_PAGE;
  }

  @Get('pages/assets/:name')
  @Header('cache-control', 'public, max-age=3600')
  asset(@Param('name') name: string, @Res({ passthrough: true }) reply: FastifyReply): string {
    const body = assets.get(name);
    if (body === undefined) {
      throw new AppException(HttpStatus.NOT_FOUND, 'NOT_FOUND', 'No such asset.');
    }
    // nosniff is on: a script or stylesheet must arrive with its own type or the browser drops it.
    void reply.type(ASSET_TYPES[name]);
    return body;
  }
}
