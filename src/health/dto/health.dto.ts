import { ApiProperty } from '@nestjs/swagger';

export class LiveDto {
  @ApiProperty({ enum: ['ok'] })
  status!: 'ok';
}

export class IndicatorDto {
  @ApiProperty({ enum: ['up', 'down'] })
  status!: 'up' | 'down';
}

export class ReadyIndicatorsDto {
  database!: IndicatorDto;

  /** Present when REDIS_URL is set; `down` leaves the instance ready (throttles count in memory). */
  @ApiProperty({ type: IndicatorDto, required: false })
  redis?: IndicatorDto;
}

/** @nestjs/terminus' answer: the state of each indicator. */
export class ReadyDto {
  @ApiProperty({ enum: ['ok'] })
  status!: 'ok';

  info!: ReadyIndicatorsDto;

  /** Always empty in a 200. */
  @ApiProperty({ type: 'object', properties: {}, additionalProperties: false })
  error!: Record<string, never>;

  details!: ReadyIndicatorsDto;
}
