import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Transport } from 'nodemailer';
import type MailMessage from 'nodemailer/lib/mailer/mail-message.js';

export interface FileTransportInfo {
  messageId: string;
  envelope: { from: string | false; to: string[] };
  /** Absolute path of the written .eml file. */
  path: string;
}

/**
 * The transport used when MAIL_URL is unset outside production: each message is written as an .eml
 * file (RFC 5322, opens in any mail client) so a new user can finish sign-up without a mail server.
 */
export class FileTransport implements Transport<FileTransportInfo> {
  readonly name = 'gatehouse-file';
  readonly version = '1';

  constructor(private readonly dir: string) {}

  send(
    mail: MailMessage<FileTransportInfo>,
    callback: (err: Error | null, info: FileTransportInfo) => void,
  ): void {
    this.write(mail).then(
      (info) => callback(null, info),
      (error: unknown) =>
        callback(error instanceof Error ? error : new Error(String(error)), undefined as never),
    );
  }

  private async write(mail: MailMessage<FileTransportInfo>): Promise<FileTransportInfo> {
    const raw = await mail.message.build();
    const dir = resolve(this.dir);
    await mkdir(dir, { recursive: true });
    const path = join(
      dir,
      `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}.eml`,
    );
    await writeFile(path, raw, { mode: 0o600 });
    const envelope = mail.message.getEnvelope();
    return { messageId: mail.message.messageId(), envelope, path };
  }
}
