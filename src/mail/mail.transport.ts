import { Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import nodemailer, { type SentMessageInfo, type Transporter } from 'nodemailer';
import type { Config, MailConfig } from '../config/config.js';
import { FileTransport } from './file.transport.js';

/** The pooled SMTP transport sends up to this many messages at a time. */
export const SMTP_CONNECTIONS = 5;

export interface OutgoingMail {
  to: string;
  subject: string;
  html: string;
  text: string;
}

/**
 * The nodemailer transport chosen by MAIL_URL: smtp:// or smtps:// (pooled, with connection, greeting
 * and socket timeouts so a hung server cannot hold the worker), or, when unset outside production,
 * .eml files under MAIL_DIR.
 *
 * nodemailer is used directly rather than through @nestjs-modules/mailer: that package (2.3.x) is
 * CommonJS that require()s the ESM-only @nestjs/common 12 (Jest on Node 20 cannot load it) and needs
 * an undeclared lodash; we render our own templates, so its only job would have been this sendMail.
 */
@Injectable()
export class MailTransport implements OnApplicationShutdown {
  private readonly transporter: Transporter<SentMessageInfo>;
  private readonly from: string;

  constructor(config: ConfigService<Config, true>) {
    const mail = config.getOrThrow('mail', { infer: true });
    this.from = mail.from;
    this.transporter = createTransporter(mail);
  }

  /** Resolves with nodemailer's info (`path` for the file transport), rejects with its error. */
  send(mail: OutgoingMail): Promise<SentMessageInfo> {
    return this.transporter.sendMail({ from: this.from, ...mail });
  }

  onApplicationShutdown(): void {
    this.transporter.close();
  }
}

function createTransporter(mail: MailConfig): Transporter<SentMessageInfo> {
  if (mail.url === undefined) {
    return nodemailer.createTransport(new FileTransport(mail.dir));
  }
  return nodemailer.createTransport({
    url: mail.url,
    pool: true,
    maxConnections: SMTP_CONNECTIONS,
    connectionTimeout: mail.smtpTimeoutMs,
    greetingTimeout: mail.smtpTimeoutMs,
    socketTimeout: mail.smtpTimeoutMs,
  });
}
