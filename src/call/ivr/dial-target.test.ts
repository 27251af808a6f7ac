import { describe, expect, it } from 'vitest';
import { dialTargetUri } from './dial-target.js';

describe('dialTargetUri', () => {
  const routing = { trunk: 'sip:carrier.example.com:5060;transport=tcp' };

  it('takes a sip target as it is, a phone number through the trunk, a user with a domain', () => {
    expect(dialTargetUri({ type: 'sip', sipUri: 'sip:agent@10.0.0.5' }, routing)).toEqual({ uri: 'sip:agent@10.0.0.5' });
    expect(dialTargetUri({ type: 'phone', number: '+15551234' }, routing)).toEqual({ uri: 'sip:+15551234@carrier.example.com:5060;transport=tcp' });
    expect(dialTargetUri({ type: 'user', name: 'jane@pbx.example.com' }, routing)).toEqual({ uri: 'sip:jane@pbx.example.com' });
  });

  it('says what is wrong with a target it cannot dial, with the SIP status jambonz would report', () => {
    expect(dialTargetUri({ type: 'phone', number: '+15551234' }, {})).toMatchObject({ problem: expect.stringContaining('no trunk'), sipStatus: 404 });
    expect(dialTargetUri({ type: 'phone', number: 'call me' }, routing)).toMatchObject({ problem: expect.stringContaining('target.number'), sipStatus: 400 });
    expect(dialTargetUri({ type: 'sip', sipUri: 'http://x' }, routing)).toMatchObject({ problem: expect.stringContaining('target.sipUri'), sipStatus: 400 });
    expect(dialTargetUri({ type: 'user', name: 'jane' }, routing)).toMatchObject({ sipStatus: 404 });
    expect(dialTargetUri({ type: 'teams', number: '+1' }, routing)).toMatchObject({ problem: expect.stringContaining('teams'), sipStatus: 488 });
    expect(dialTargetUri('sip:x@y', routing)).toMatchObject({ sipStatus: 400 });
  });

  it('refuses a URI outside the rule\'s allow pattern', () => {
    const allow = /@10\.0\.0\.\d+$/;
    expect(dialTargetUri({ type: 'sip', sipUri: 'sip:agent@10.0.0.5' }, { allow })).toEqual({ uri: 'sip:agent@10.0.0.5' });
    expect(dialTargetUri({ type: 'sip', sipUri: 'sip:+4420@premium.example' }, { allow })).toMatchObject({ problem: expect.stringContaining('not allowed'), sipStatus: 403 });
  });
});
