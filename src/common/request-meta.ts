import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/** Who is asking, as far as the audit trail and sessions need to know. */
export interface RequestMeta {
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

export function requestMetaOf(request: FastifyRequest): RequestMeta {
  const agent = request.headers['user-agent'];
  return {
    // request.ip honours X-Forwarded-For only when TRUST_PROXY says so (Fastify's trustProxy).
    ip: request.ip ? request.ip.slice(0, 45) : null,
    userAgent: typeof agent === 'string' ? agent.slice(0, 255) : null,
    requestId: String(request.id),
  };
}

export const ReqMeta = createParamDecorator((_data: unknown, ctx: ExecutionContext): RequestMeta =>
  requestMetaOf(ctx.switchToHttp().getRequest<FastifyRequest>()),
);
