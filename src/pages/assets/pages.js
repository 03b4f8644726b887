// The landing pages behind mailed links. Opening the page (a GET, which mail scanners also do) changes
// nothing; only the button or form below POSTs the token to the API.
(function () {
  'use strict';
  const token = new URLSearchParams(window.location.search).get('token') || '';
  const status = document.querySelector('[role="status"]');
  const form = document.querySelector('form');
  const button = form.querySelector('button');

  function show(outcome, message) {
    status.dataset.outcome = outcome;
    status.textContent = message;
  }

  const messages = {
    TOKEN_EXPIRED: 'This link has expired. Ask for a new one and use it within its validity.',
    TOKEN_INVALID: 'This link is not valid: it may have been used already, or copied incompletely.',
    RATE_LIMITED: 'Too many attempts. Wait a moment and try again.',
  };

  async function post(path, body) {
    const response = await fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    });
    if (response.ok) {
      return null;
    }
    const problem = await response.json().catch(() => ({}));
    const fieldErrors = (problem.errors || []).map((e) => e.message).join('; ');
    return messages[problem.code] || fieldErrors || problem.detail || 'Something went wrong; try again.';
  }

  if (!token) {
    show('error', messages.TOKEN_INVALID);
    button.disabled = true;
    return;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    show('pending', 'Working…');
    let error;
    if (form.dataset.action === 'verify-email') {
      error = await post('/api/v1/auth/verify-email', { token });
      if (!error) {
        show('success', 'Your email address is confirmed. You can sign in now.');
        return;
      }
    } else {
      const password = form.elements.password.value;
      if (password !== form.elements.confirm.value) {
        show('error', 'The two passwords differ.');
        button.disabled = false;
        return;
      }
      error = await post('/api/v1/auth/reset-password', { token, password });
      if (!error) {
        show('success', 'Your password has been changed. Sign in with the new one.');
        form.reset();
        return;
      }
    }
    show('error', error);
    button.disabled = false;
  });
})();
