import { Controller, Get, Inject } from '@nestjs/common';
import { API_VERSION_INFO, type VersionInfo } from './tokens.js';

export interface VersionResponse {
  readonly name: string;
  readonly version: string;
  readonly node: string;
}

@Controller('v1/version')
export class VersionController {
  constructor(@Inject(API_VERSION_INFO) private readonly info: VersionInfo) {}

  @Get()
  version(): VersionResponse {
    return { name: this.info.name, version: this.info.version, node: process.versions.node };
  }
}
