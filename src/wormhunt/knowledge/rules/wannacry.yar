/*
 * wormhunt: WannaCry (May 2017) worm and ransomware components.
 * Written for wormhunt from public descriptions (threat-intel.md 2.4): service name,
 * dropped file names, mutex, kill-switch domains. Licence: Apache-2.0, as the project.
 */

rule WH_WannaCry_Worm : worm ransomware
{
    meta:
        author = "wormhunt"
        description = "WannaCry worm/dropper: mssecsvc service, tasksche.exe, kill-switch domain or SMB exploit placeholders"
        family = "WannaCry"
        confidence = "high"
    strings:
        $svc1 = "mssecsvc2.0" ascii wide nocase
        $svc2 = "mssecsvc2.1" ascii wide nocase
        $svc3 = "Microsoft Security Center (2.0) Service" ascii wide
        $drop = "tasksche.exe" ascii wide nocase
        $ks1 = "iuqerfsodp9ifjaposdfjhgosurijfaewrwergwea" ascii wide nocase
        $ks2 = "ifferfsodp9ifjaposdfjhgosurijfaewrwergwea" ascii wide nocase
        $ks3 = "iuqssfsodp9ifjaposdfjhgosurijfaewrwergwea" ascii wide nocase
        $ks4 = "ayylmaotjhsstasdfasdfasdfasdfasdfasdfasdf" ascii wide nocase
        $smb1 = "__TREEID__PLACEHOLDER__" ascii
        $smb2 = "__USERID__PLACEHOLDER__" ascii
    condition:
        1 of ($ks*) or (1 of ($svc*) and $drop) or (all of ($smb*) and (1 of ($svc*) or $drop))
}

rule WH_WannaCry_Ransomware : ransomware
{
    meta:
        author = "wormhunt"
        description = "WannaCry encryptor: mutex, zip password, WNcry names and icacls command"
        family = "WannaCry"
        confidence = "high"
    strings:
        $m = "MsWinZonesCacheCounterMutexA" ascii wide
        $pw = "WNcry@2ol7" ascii wide
        $q = "qeriuwjhrf" ascii wide
        $icacls = "icacls . /grant Everyone:F /T /C /Q" ascii wide
        $w1 = "WanaCrypt0r" ascii wide nocase
        $w2 = "@WanaDecryptor@" ascii wide nocase
        $w3 = ".WNCRY" ascii wide
        $w4 = "t.wnry" ascii wide
        $w5 = "taskdl.exe" ascii wide
        $w6 = "taskse.exe" ascii wide
    condition:
        $m or $pw or 3 of them
}
